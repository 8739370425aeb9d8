"""Rendering an inspector page: the Jinja environment, the context every page gets, and
the headers every page is sent with.

Autoescaping is on for every template and nothing here marks text safe, so payloads
(bodies, headers, error texts) always reach the browser as text. The Content Security
Policy allows scripts and styles from our own origin only: even a slip in a template
could not run an inline script.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway import keys
from gateway.admin.auth import CSRF_FIELD, identity
from gateway.ui import format as fmt

STATIC_PREFIX = "/admin/static"
STATIC_DIR = Path(str(files("gateway.ui").joinpath("static")))
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# What a redirect after an action may ask the next page to say: fixed texts, so a
# crafted link can make a page show only one of these (with a number), nothing else.
NOTICES = {
    "replayed": ("ok", "Replay queued: {n} deliveries will be sent again."),
    "paused": ("ok", "Target paused: its deliveries wait until it is resumed."),
    "resumed": ("ok", "Target resumed."),
    "cancelled": ("ok", "Delivery cancelled: it will not be sent again."),
    "released": ("ok", "FIFO key released: {n} dead deliveries no longer hold it back."),
}


_NOT_QUERY = frozenset({"partial", "notice", "n"})  # the page's own, not its twin's
_NOT_FILTERS = _NOT_QUERY | {"cursor"}


class Query(dict[str, str]):
    """The request's query for templates: a parameter that is absent reads as ""."""

    def __missing__(self, key: str) -> str:
        return ""


def setup_templates(app: web.Application) -> None:
    """The Jinja environment of the pages (autoescaped), on the app that serves /admin."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("gateway.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        absolute=fmt.absolute, size=fmt.size, duration=fmt.duration, pill=fmt.pill,
        relative=_relative, short=short_id,
    )  # fmt: skip
    env.globals.update(static=static_url(), page_url=page_url, csrf_field=CSRF_FIELD)


@jinja2.pass_context
def _relative(context: Mapping[str, Any], moment: dt.datetime | None) -> str:
    return fmt.relative(moment, context["now"])


def short_id(value: object) -> str:
    """The first 13 characters of an id: its time part, enough to tell events apart."""
    return str(value)[:13]


def static_url() -> Any:
    """`static(name)`: the file's URL with a content hash, so a new release is fetched."""
    versions = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        for path in STATIC_DIR.iterdir()
        if path.is_file()
    }
    return lambda name: f"{STATIC_PREFIX}/{name}?v={versions[name]}"


def page_url(path: str, query: Mapping[str, str | None] | None = None, **changes: Any) -> str:
    """`path` with `query` and `changes` (None drops a key): links that keep the filters."""
    merged = {**(query or {}), **changes}
    kept = {k: str(v) for k, v in merged.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def notices(request: web.Request) -> list[tuple[str, str]]:
    code = request.query.get("notice", "")
    if code not in NOTICES:
        return []
    tone, text = NOTICES[code]
    count = request.query.get("n", "")
    return [(tone, text.format(n=int(count) if count.isdigit() else "some"))]


def render(
    request: web.Request, template: str, page: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    """`template` with the context every page has: who, CSRF token, clock, notices."""
    who = identity(request)
    full = {
        "who": who.name,
        "csrf": who.csrf,
        "page": page,
        "now": request.app[keys.CLOCK].now(),
        "notices": notices(request),
        "query": Query(request.query),
        "filtered": any(v for k, v in request.query.items() if k not in _NOT_FILTERS),
        "twin": {k: v for k, v in request.query.items() if k not in _NOT_QUERY},
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    response.headers.update(HEADERS)
    return response
