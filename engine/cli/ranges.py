"""argparse types with ranges: a value out of range is exit 2 before anything is written (CONTRACTS §9)."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

MAX_IMAGE_SIZE = 2048  # training size in pixels (one side); the engine resizes every image to it
MIN_IMAGE_SIZE = 16


def int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range ({low}..{high})")
        return value
    parse.__name__ = f"integer {low}..{high}"
    return parse


def float_range(low: float, high: float, low_open: bool = True) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            raise argparse.ArgumentTypeError(f"{text} is out of range ({'>' if low_open else '>='} {low}, <= {high})")
        return value
    parse.__name__ = f"number in ({low}, {high}]"
    return parse


EPOCHS = int_range(1, 10_000)
IMAGE_SIZE = int_range(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
SEED = int_range(0, 2**31 - 1)
BUDGET_MINUTES = float_range(0.0, 7 * 24 * 60.0)  # up to a week
NPROC = int_range(1, 64)
ID = int_range(1, 2**63 - 1)
PACS_LIMIT = int_range(1, 10_000_000)  # instances per DICOMweb import
