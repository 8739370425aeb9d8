"""Bitbucket: ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``, keyed by the secret.

Bitbucket Cloud and Data Center sign alike; a webhook saved without a secret is not signed
and is rejected here.
https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/#Secure-webhooks
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

HEADER = "X-Hub-Signature"
PREFIX = "sha256="

SAMPLE_BODY = (
    b'{"actor": {"display_name": "hookgate", "type": "user"},'
    b' "repository": {"full_name": "hookgate/example", "type": "repository"},'
    b' "push": {"changes": [{"new": {"type": "branch", "name": "main",'
    b' "target": {"hash": "709d658dc5b6d6afcd46049c2f332ee3f515a67d"}}}]}}'
)


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]


def parse(section: Section) -> Options:
    return Options(secrets_from(section))


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = header(inbound, HEADER)
    # isascii: a header decoded with surrogateescape must not reach str.encode() in the compare.
    require(given.startswith(PREFIX) and given.isascii(), f"{HEADER} is not sha256=<hex>")
    expected = [PREFIX + hmac_digest(key, inbound.body).hex() for key in options.secrets]
    require(matches_any(expected, [given.lower()]), "signature does not match")
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    return {
        HEADER: PREFIX + hmac_digest(options.secrets[0], body).hex(),
        "X-Event-Key": "repo:push",
        "X-Request-UUID": sample_id(),
        "X-Hook-UUID": "{6ab6f3ed-1e1b-4c37-8ac4-2a8a1ab39ad4}",
    }


plugin = VerifierSpec(
    name="bitbucket",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe="header:X-Request-UUID",
    sample_body=SAMPLE_BODY,
)
