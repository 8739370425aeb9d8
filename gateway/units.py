"""Parsing of the human units used in hookgate.yaml: durations and sizes."""

from __future__ import annotations

import json
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_UNITS = {
    None: 1, "B": 1, "KB": 1000, "KiB": 1024,
    "MB": 1000**2, "MiB": 1024**2, "GB": 1000**3, "GiB": 1024**3,
}  # fmt: skip


def parse_duration(value: object) -> float:
    """Seconds in ``10s``, ``250ms``, ``5m``, ``72h`` or ``2d``; a bare number is seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a duration like 10s, got {show_value(value)}")
    return float(match[1]) * _DURATION_UNITS[match[2]]


def parse_size(value: object) -> int:
    """Bytes in ``1MiB``, ``512KiB``, ``100KB`` or a bare number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a size like 1MiB, got {show_value(value)}")
    return int(match[1]) * _SIZE_UNITS[match[2]]


def show_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)
