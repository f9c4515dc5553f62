"""The one JSON encoder for every JSON column: NaN and ±inf become null, on SQLite and PostgreSQL alike.

PostgreSQL's json type rejects the `NaN` token Python's json module writes by default (an undefined precision
or a single-class AUC once failed a whole training job at registration); SQLite would store it and hand it
back as a float that no other tool parses. null is what the app shows as "–".
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def finite(value: Any) -> Any:
    """A JSON-ready copy of `value`: non-finite floats -> None, numpy scalars/arrays -> Python, tuples -> lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, np.generic):
        return finite(value.item())
    return value


def dumps(value: Any) -> str:
    """json.dumps for the database: never writes NaN/Infinity (allow_nan=False would be a bug, not data)."""
    return json.dumps(finite(value), allow_nan=False)
