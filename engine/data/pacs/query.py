"""QIDO-RS: which instances a PACS import asks for (by study UID and/or attribute filters), image objects only."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from engine.data.pacs.connection import PacsError

# SOP classes that are not images to label: segmentations and reports (ours, written back, among them),
# presentation states, key-object selections, RT structures and plans, encapsulated documents, waveforms
NON_IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.66",    # raw data, spatial registration, fiducials, segmentation, surface
    "1.2.840.10008.5.1.4.1.1.88",    # structured reports and key object selection
    "1.2.840.10008.5.1.4.1.1.11",    # presentation states
    "1.2.840.10008.5.1.4.1.1.104",   # encapsulated PDF/CDA
    "1.2.840.10008.5.1.4.1.1.9",     # waveforms
    "1.2.840.10008.5.1.4.1.1.481.2", "1.2.840.10008.5.1.4.1.1.481.3", "1.2.840.10008.5.1.4.1.1.481.5",
)
_FIELDS = ("SOPClassUID", "NumberOfFrames", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@dataclass(frozen=True)
class InstanceRef:
    study: str
    series: str
    sop: str
    sop_class: str
    frames: int | None


def parse_query(text: str | None) -> dict[str, str]:
    """'Modality=CR&StudyDate=20240101-20241231' -> QIDO search filters; a malformed query is a usage error."""
    if not text:
        return {}
    try:
        pairs = parse_qsl(text, keep_blank_values=False, strict_parsing=True)
    except ValueError:
        raise PacsError(f"--query {text!r}: write KEY=VALUE pairs joined by & (e.g. Modality=CR&StudyDate="
                        "20240101-20241231)") from None
    return dict(pairs)


def _value(item: dict, tag: str) -> str | None:
    values = (item.get(tag) or {}).get("Value") or []
    return str(values[0]) if values else None


def _ref(item: dict) -> InstanceRef | None:
    study, series, sop = _value(item, "0020000D"), _value(item, "0020000E"), _value(item, "00080018")
    if not (study and series and sop):
        return None
    frames = _value(item, "00280008")
    return InstanceRef(study, series, sop, _value(item, "00080016") or "", int(frames) if frames else None)


def is_image(ref: InstanceRef) -> bool:
    return not ref.sop_class.startswith(NON_IMAGE_SOP_PREFIXES)


def find_instances(dw, studies: list[str] | None, query: str | None, limit: int | None) -> list[InstanceRef]:
    """Every matching instance (paged), in study/series/instance order, at most `limit` of them."""
    filters = parse_query(query)
    found: list[InstanceRef] = []
    for study in studies or [None]:
        items = dw.search_for_instances(study_instance_uid=study, fields=list(_FIELDS), search_filters=filters,
                                        get_remaining=True)
        found += [ref for ref in map(_ref, items) if ref is not None]
    unique = {ref.sop: ref for ref in found}
    ordered = sorted(unique.values(), key=lambda r: (r.study, r.series, r.sop))
    return ordered[:limit] if limit else ordered
