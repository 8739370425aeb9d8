"""The OpenAPI 3.1 document of /admin/api (served at /admin/api/openapi.json)."""

from __future__ import annotations

from typing import Any

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "hookgate admin API", "version": "1"},
    "paths": {},
}
