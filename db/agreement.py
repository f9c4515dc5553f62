"""Reader agreement under double reading: Cohen's kappa per reader pair (overall and per class, one class
against the rest) from scikit-learn, Fleiss' kappa for cases with three readers from statsmodels."""
from __future__ import annotations

import math
import warnings
from itertools import combinations
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from db.models import Project
from db.reading import Read, project_reads


def _has_class(read: Read, index: int) -> bool:
    if read.kind != "class":
        return False
    return index in read.value if isinstance(read.value, list) else read.value == index


def _kappa(a: list, b: list) -> float | None:
    """Cohen's kappa, None where it is undefined (both readers gave one same answer throughout)."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(cohen_kappa_score([str(x) for x in a], [str(x) for x in b]))
    return None if math.isnan(value) else round(value, 4)


def _fleiss(by_case: dict[int, list[Read]]) -> dict[str, Any] | None:
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    triples = [sorted(reads, key=lambda r: r.reader_id)[:3] for reads in by_case.values() if len(reads) >= 3]
    if len(triples) < 2:
        return None
    table, _ = aggregate_raters(np.array([[str(r.answer) for r in t] for t in triples]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(fleiss_kappa(table, method="fleiss"))
    return {"n": len(triples), "kappa": None if math.isnan(value) else round(value, 4)}


def summarize(reads: list[Read], classes: list[str]) -> dict[str, Any]:
    by_case: dict[int, list[Read]] = {}
    for read in reads:
        by_case.setdefault(read.image_id, []).append(read)
    multi = {k: v for k, v in by_case.items() if len(v) >= 2}
    agreed = sum(len({r.answer for r in v}) == 1 for v in multi.values())
    readers = sorted({(r.reader_id, r.reader) for r in reads})
    pairs = []
    for (id_a, name_a), (id_b, name_b) in combinations(readers, 2):
        both = [(next(r for r in v if r.reader_id == id_a), next(r for r in v if r.reader_id == id_b))
                for v in multi.values() if {id_a, id_b} <= {r.reader_id for r in v}]
        if not both:
            continue
        a, b = [x for x, _ in both], [y for _, y in both]
        pairs.append({
            "readers": [name_a, name_b], "n": len(both),
            "observed": round(sum(x.answer == y.answer for x, y in both) / len(both), 4),
            "kappa": _kappa([x.answer for x in a], [y.answer for y in b]),
            "per_class": {name: _kappa([_has_class(x, i) for x in a], [_has_class(y, i) for y in b])
                          for i, name in enumerate(classes)},
        })
    return {"cases_read": len(multi), "agreed": agreed, "disagreed": len(multi) - agreed, "pairs": pairs,
            "fleiss": _fleiss(multi)}


def project_agreement(session: Session, project: Project) -> dict[str, Any] | None:
    """None for a project nobody double-read."""
    reads = project_reads(session, project.id)
    if not reads:
        return None
    from db.leases import readers_per_case

    return {"readers_per_case": readers_per_case(project), **summarize(reads, list(project.classes))}
