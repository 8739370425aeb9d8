"""A request body's JSON, parsed at most once however many extractors and filters ask.

At ingest the event type, every route and target filter, the dedupe key and each
ordering key may all look into the body, one after another with no await between them.
The last body parsed (by identity, so a different body is never mistaken for it) and its
document are remembered; only reads are made of the document.
"""

from __future__ import annotations

from typing import Any

import orjson

NOT_JSON: Any = object()
_last: tuple[bytes, Any] | None = None


def parsed(body: bytes) -> Any:
    """The body's JSON document, or `NOT_JSON`."""
    global _last
    if _last is not None and _last[0] is body:
        return _last[1]
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = NOT_JSON
    _last = (body, document)
    return document
