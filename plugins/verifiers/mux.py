"""Mux: ``Mux-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">[,v1=...]``.

Entries of other schemes (v2=...) are ignored, as Mux's SDKs do; any v1 may match any
configured secret. The timestamp must be within `tolerance` (default 5 minutes).
https://www.mux.com/docs/core/verify-webhook-signatures
"""

from __future__ import annotations

from plugins.verifiers import stamped

HEADER = "Mux-Signature"

SAMPLE_BODY = (
    b'{"type":"video.asset.ready","id":"3a56ac3d-33da-4366-855b-f592d898409d",'
    b'"object":{"type":"asset","id":"0201p02fGKPE7MrbC269XRD7LpcHhrmbu0002"},'
    b'"environment":{"name":"Production","id":"j0863n"},'
    b'"data":{"id":"0201p02fGKPE7MrbC269XRD7LpcHhrmbu0002","status":"ready",'
    b'"playback_ids":[{"policy":"public","id":"sRNCd76bzE01KhfTY6O7bHfgn02y7Wq5lpi"}]},'
    b'"created_at":"2024-05-01T12:00:00.000000Z","attempts":[],"request_id":null}'
)


plugin = stamped.spec(
    "mux",
    HEADER,
    tolerance=300.0,
    default_dedupe="json:id",
    sample_body=SAMPLE_BODY,
)
Options = stamped.Options
check = plugin.check
sign = plugin.sign
