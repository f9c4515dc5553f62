"""`bench ssl --variant TAG=JSON`: one named change of every SSL method's settings, checked before any cell runs."""
from __future__ import annotations

import json
from typing import Any


def parse_variant(text: str | None) -> tuple[str | None, dict[str, Any]]:
    """--variant TAG=JSON -> (TAG, {"method_params": {...}, "data": {...}}); a clear error for anything else."""
    if not text:
        return None, {}
    tag, sep, body = text.partition("=")
    if not sep or not tag or any(c in tag for c in "@+/ "):
        raise SystemExit(f"--variant {text!r}: expected TAG=JSON with a TAG of letters, digits, _ or -")
    try:
        settings = json.loads(body)
    except json.JSONDecodeError as err:
        raise SystemExit(f"--variant {tag}: the settings are not JSON ({err})") from None
    if not isinstance(settings, dict) or not settings or set(settings) - {"method_params", "data"}:
        raise SystemExit(f"--variant {tag}: give an object with method_params and/or data, got {body}")
    from dataclasses import fields

    from engine.core.config import DataConfig

    known = {f.name for f in fields(DataConfig)}
    unknown = sorted(set(settings.get("data", {})) - known)
    if unknown:
        raise SystemExit(f"--variant {tag}: DataConfig has no {unknown}; it has {sorted(known)}")
    return tag, settings
