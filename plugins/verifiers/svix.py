"""Svix: Standard Webhooks signatures under ``svix-id``, ``svix-timestamp``, ``svix-signature``.

The ``webhook-*`` spelling is accepted too (Svix sends it when asked to); options and
checks are those of `plugins.verifiers.standard_webhooks`.
https://docs.svix.com/receiving/verifying-payloads/how-manual
"""

from __future__ import annotations

import datetime as dt

from gateway.plugin import (
    Inbound,
    Reply,
    VerifierSpec,
)
from plugins.verifiers import standard_webhooks
from plugins.verifiers.standard_webhooks import Options, parse

PREFIXES = ("svix", "webhook")


def check(inbound: Inbound, options: Options) -> Reply | None:
    standard_webhooks.verify(inbound, options, PREFIXES)
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return standard_webhooks.headers_for(options, body, now, "svix")


plugin = VerifierSpec(
    name="svix",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="header:svix-id",
)
