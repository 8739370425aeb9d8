"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerifierSpec,
    header,
    hmac_digest,
    matches_any,
    require,
    sample_id,
    secrets_from,
)

PREFIX = "sha256="


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]


def parse(section: Section) -> Options:
    return Options(secrets_from(section))


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = header(inbound, "X-Hub-Signature-256")
    require(given.startswith(PREFIX), "X-Hub-Signature-256 is not sha256=<hex>")
    expected = [PREFIX + hmac_digest(key, inbound.body).hex() for key in options.secrets]
    require(matches_any(expected, [given.lower()]), "signature does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": PREFIX + hmac_digest(options.secrets[0], body).hex(),
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": sample_id(),
    }


plugin = VerifierSpec(
    name="github",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="header:X-GitHub-Delivery",
)
