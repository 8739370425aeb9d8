"""The named SQL blocks of every ``.sql`` file of this package (``queries.sql``,
``purge.sql``, ...), loaded once at import; a name is defined once across them."""

from __future__ import annotations

import re
from importlib.resources import files

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load(text: str) -> dict[str, str]:
    """Split ``-- name: x`` blocks into {name: sql}."""
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def load_all() -> dict[str, str]:
    """Every block of every ``.sql`` file here (migrations live in their own package)."""
    found: dict[str, str] = {}
    for entry in sorted(files("gateway.storage").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            blocks = load(entry.read_text(encoding="utf-8"))
            if clash := found.keys() & blocks.keys():
                raise RuntimeError(f"{entry.name}: query names defined twice: {sorted(clash)}")
            found.update(blocks)
    return found


QUERIES = load_all()
