"""OS priority of the worker: torch-free, so `worker` opens its database before the heavy imports."""
from __future__ import annotations

import os


def lower_priority(increment: int = 10) -> int | None:
    """Raise this process's niceness by `increment` (children, e.g. torchrun ranks, inherit it).

    Returns the new niceness, or None where the OS has no nice (Windows) or refuses.
    """
    if increment <= 0 or not hasattr(os, "nice"):
        return None
    try:
        return os.nice(increment)
    except OSError:
        return None
