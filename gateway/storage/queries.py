"""The named SQL blocks of ``queries.sql``, loaded once at import."""

from __future__ import annotations

import re
from importlib.resources import files

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load(text: str) -> dict[str, str]:
    """Split ``-- name: x`` blocks into {name: sql}."""
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


QUERIES = load(files("gateway.storage").joinpath("queries.sql").read_text(encoding="utf-8"))
