"""GitLab: ``X-Gitlab-Token`` is the configured secret token, compared as is; and/or,
with a signing token, Standard Webhooks ``webhook-signature: v1,<base64 HMAC-SHA256>``.

When both are configured, both must hold.
https://docs.gitlab.com/user/project/integrations/webhooks/
https://gitlab.com/gitlab-org/gitlab/-/merge_requests/230944 (the signing token)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.plugin import (
    Credentials,
    Inbound,
    Reply,
    Section,
    VerifierSpec,
    header,
    matches_any,
    require,
    sample_id,
    secrets_from,
    tolerance_from,
)
from plugins.verifiers import standard_webhooks

SAMPLE_BODY = (
    b'{"object_kind": "push", "event_name": "push", "ref": "refs/heads/main",'
    b' "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",'
    b' "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "user_username": "jsmith",'
    b' "project": {"id": 15, "path_with_namespace": "mike/diaspora"},'
    b' "commits": [], "total_commits_count": 0}'
)


@dataclass(frozen=True, slots=True)
class Options:
    tokens: tuple[bytes, ...]  # X-Gitlab-Token values
    signing: standard_webhooks.Options | None  # the signing token's keys


def parse(section: Section) -> Options:
    has_token = "secret" in section or "secrets" in section
    has_signing = "signing_token" in section or "signing_tokens" in section
    if not (has_token or has_signing):
        section.fail("needs secret (the X-Gitlab-Token) or signing_token", "secret")
    tokens = secrets_from(section) if has_token else ()
    signing = None
    if has_signing:
        keys = standard_webhooks.hmac_keys(section, "signing_token")
        signing = standard_webhooks.Options(keys, (), tolerance_from(section))
    elif "tolerance" in section:
        tolerance_from(section)  # read, so that the problem is this one, not "unknown key"
        section.fail(
            "applies only with a signing_token (X-Gitlab-Token has no timestamp)", "tolerance"
        )
    return Options(tokens, signing)


def check(inbound: Inbound, options: Options) -> Reply | None:
    if options.tokens:
        given = standard_webhooks.raw(header(inbound, "X-Gitlab-Token"), "X-Gitlab-Token")
        require(matches_any(options.tokens, [given]), "X-Gitlab-Token does not match")
    if options.signing is not None:
        standard_webhooks.verify(inbound, options.signing)
    return None


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    key = sample_id()
    headers = {
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Event-UUID": sample_id(),
        "Idempotency-Key": key,
    }
    if options.tokens:
        headers["X-Gitlab-Token"] = options.tokens[0].decode()
    if options.signing is not None:
        headers |= standard_webhooks.headers_for(options.signing, body, now, "webhook", key)
    return headers


plugin = VerifierSpec(
    name="gitlab",
    parse=parse,
    check=check,
    sign=sign,
    # GitLab's docs: "unique ID that remains consistent across webhook retries"; with a
    # signing token, webhook-id carries the same value. Older GitLab sends none: no dedupe.
    default_dedupe="header:Idempotency-Key",
    sample_body=SAMPLE_BODY,
    credentials=lambda options: Credentials(headers=("X-Gitlab-Token",)),
)
