"""What an import did: counts, duplicates (with the id they duplicate) and every rejected file with its reason."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.data.source_types import Rejected


@dataclass
class Duplicate:
    name: str
    duplicate_of: int
    label_differs: bool


@dataclass
class ImportReport:
    project: str
    project_id: int
    created_project: bool
    imported: int = 0
    labels: int = 0
    duplicates: list[Duplicate] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files that are not images (notes.txt, README.md)
    incomplete: bool = False  # the source stopped early (a PACS timeout): re-run to fetch the rest

    @property
    def exit_code(self) -> int:
        """0 when the import ran; 1 when not one item could be read or the source stopped early."""
        if self.incomplete:
            return 1
        return 1 if self.imported == 0 and not self.duplicates and self.rejected else 0

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "imported": self.imported, "labels": self.labels,
                "duplicates": len(self.duplicates), "rejected": len(self.rejected),
                "duplicate_items": [vars(d) for d in self.duplicates],
                "rejected_items": [vars(r) for r in self.rejected], "warnings": self.warnings,
                "skipped_items": self.skipped}

    def summary(self) -> str:
        lines = [(f"project {self.project!r}: imported {self.imported} images ({self.labels} labels), "
                  f"{len(self.duplicates)} duplicates skipped, {len(self.rejected)} rejected")]
        differing = [d for d in self.duplicates if d.label_differs]
        if differing:
            lines.append(f"  {len(differing)} duplicates carry a different label than the image they duplicate:")
            lines += [f"    {d.name} duplicates image {d.duplicate_of}" for d in differing[:20]]
        same = [d for d in self.duplicates if not d.label_differs]
        lines += [f"  duplicate {d.name} = image {d.duplicate_of}" for d in same[:20]]
        if len(same) > 20:
            lines.append(f"  … and {len(same) - 20} more duplicates")
        lines += [f"  rejected {r.name}: {r.reason}" for r in self.rejected]
        if self.skipped:
            shown = ", ".join(self.skipped[:20]) + (f" and {len(self.skipped) - 20} more" if len(self.skipped) > 20 else "")
            lines.append(f"  skipped {len(self.skipped)} files that are not images: {shown}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)
