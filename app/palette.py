"""One colour per class everywhere (Explore map, Relations graph, Projects balance): class i is always
PALETTE[i], whatever else a chart shows; non-class categories (split, status) get their own fixed colours.
Class colours once differed between pages, so a reader's "green = pneumonia" broke on the next page."""
from __future__ import annotations

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f"]  # tab10, reordered so the first two classes are blue / red
UNLABELED = "#c9ced6"
FIXED = {"unlabeled": UNLABELED, "uncertain": "#f2b134", "excluded": "#555555", "labeled": "#4c78a8",
         "train": "#4c78a8", "val": "#f58518", "test": "#54a24b", "": UNLABELED}


def class_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def colour_map(classes: list[str], categories: list[str]) -> dict[str, str]:
    """Colour per category: a project class by its index, then the fixed ones, then the rest in order."""
    out: dict[str, str] = {}
    spare = iter(PALETTE[len(classes) % len(PALETTE):] + PALETTE[: len(classes) % len(PALETTE)])
    for name in categories:
        if name in classes:
            out[name] = class_colour(classes.index(name))
        elif name in FIXED:
            out[name] = FIXED[name]
        else:
            out[name] = next(spare, UNLABELED)
    return out
