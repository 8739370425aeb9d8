"""GitLab: the X-Gitlab-Token secret token, and the Standard Webhooks signing token."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.gitlab import check, plugin, sign

TOKEN = "a-gitlab-secret-token"
OTHER_TOKEN = "the-next-gitlab-secret-token"
# The signing token follows Standard Webhooks (https://gitlab.com/gitlab-org/gitlab/-/merge_requests/230944),
# so the specification's published vector applies
# (https://github.com/standard-webhooks/standard-webhooks/tree/main/libraries).
SIGNING_TOKEN = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
NOW = dt.datetime.fromtimestamp(STAMP, dt.UTC)
OTHER_SIGNING_TOKEN = "whsec_" + base64.b64encode(b"a 32-byte key for the next token").decode()


build = Builders(plugin, body=BODY, now=NOW)
options, problems_for, inbound = build.options, build.problems_for, build.inbound


def signed(signature=SIGNATURE, stamp=STAMP):
    return {"webhook-id": MSG_ID, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def signature_by(token, stamp=STAMP, body=BODY):
    key = base64.b64decode(token.removeprefix("whsec_"))
    digest = hmac.new(key, f"{MSG_ID}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_gitlab_matching_token_is_accepted():
    assert check(inbound({"X-Gitlab-Token": TOKEN}), options(secret=TOKEN)) is None


@pytest.mark.parametrize(
    "given_token",
    [OTHER_TOKEN, TOKEN.upper(), TOKEN + " ", " " + TOKEN, TOKEN[:-1], TOKEN + "\x00", "é"],
)
def test_gitlab_wrong_token_is_rejected(given_token):
    with pytest.raises(VerificationError, match="X-Gitlab-Token does not match"):
        check(inbound({"X-Gitlab-Token": given_token}), options(secret=TOKEN))


@pytest.mark.parametrize("sent", [{}, {"X-Gitlab-Token": ""}, {"X-Gitlab-Tokens": TOKEN}])
def test_gitlab_missing_token_is_rejected(sent):
    with pytest.raises(VerificationError, match="missing X-Gitlab-Token header"):
        check(inbound(sent), options(secret=TOKEN))


def test_gitlab_non_ascii_token_is_compared_as_sent_bytes():
    # The server decodes header bytes as UTF-8 with surrogateescape.
    opts = options(secret="pässwörd-token")
    assert check(inbound({"X-Gitlab-Token": "pässwörd-token"}), opts) is None
    with pytest.raises(VerificationError, match="does not match"):
        check(inbound({"X-Gitlab-Token": "p\udcc3\udca4sswörd"}), opts)
    with pytest.raises(VerificationError, match="malformed X-Gitlab-Token"):
        check(inbound({"X-Gitlab-Token": "\ud800"}), opts)


def test_gitlab_token_does_not_depend_on_the_body():
    opts = options(secret=TOKEN)
    assert check(inbound({"X-Gitlab-Token": TOKEN}, b"anything at all"), opts) is None


def test_gitlab_signing_token_published_vector_is_accepted():
    assert check(inbound(signed()), options(signing_token=SIGNING_TOKEN)) is None


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_gitlab_signing_token_missing_header_is_rejected(name):
    sent = signed()
    del sent[name]
    with pytest.raises(VerificationError, match=f"missing {name} header"):
        check(inbound(sent), options(signing_token=SIGNING_TOKEN))


@pytest.mark.parametrize(
    "changed",
    [
        {"webhook-signature": "sha256=" + "0" * 64},
        {"webhook-signature": "v1"},
        {"webhook-signature": "v1,%%%"},
        {"webhook-timestamp": "1614265330.5"},
        {"webhook-timestamp": "yesterday"},
    ],
)
def test_gitlab_signing_token_malformed_headers_are_rejected(changed):
    with pytest.raises(VerificationError):
        check(inbound(signed() | changed), options(signing_token=SIGNING_TOKEN))


@pytest.mark.parametrize("offset", [-300, 300])
def test_gitlab_signing_token_at_the_tolerance_edge_is_accepted(offset):
    stamp = STAMP + offset
    sent = signed(signature_by(SIGNING_TOKEN, stamp), stamp)
    assert check(inbound(sent), options(signing_token=SIGNING_TOKEN)) is None


def test_gitlab_with_both_configured_both_must_hold():
    opts = options(secret=TOKEN, signing_token=SIGNING_TOKEN)
    assert check(inbound(signed() | {"X-Gitlab-Token": TOKEN}), opts) is None
    with pytest.raises(VerificationError, match="missing X-Gitlab-Token"):
        check(inbound(signed()), opts)
    with pytest.raises(VerificationError, match="X-Gitlab-Token does not match"):
        check(inbound(signed() | {"X-Gitlab-Token": OTHER_TOKEN}), opts)
    with pytest.raises(VerificationError, match="missing webhook-id"):
        check(inbound({"X-Gitlab-Token": TOKEN}), opts)
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(signed() | {"X-Gitlab-Token": TOKEN}, b"{}"), opts)


@pytest.mark.parametrize(
    "config",
    [
        {"secret": TOKEN},
        {"signing_token": SIGNING_TOKEN},
        {"secret": TOKEN, "signing_token": SIGNING_TOKEN},
    ],
    ids=["token", "signing-token", "both"],
)
def test_gitlab_sign_round_trips(config):
    opts = options(**config)
    sent = sign(opts, plugin.sample_body, "https://hooks.example.com/in/x", NOW)
    assert sent["X-Gitlab-Event"] == "Push Hook"
    assert ("X-Gitlab-Token" in sent) == ("secret" in config)
    assert ("webhook-signature" in sent) == ("signing_token" in config)
    assert check(inbound(sent, plugin.sample_body), opts) is None


def test_gitlab_signed_webhook_id_is_the_idempotency_key():
    sent = sign(options(signing_token=SIGNING_TOKEN), BODY, "", NOW)
    assert sent["webhook-id"] == sent["Idempotency-Key"]
    assert plugin.default_dedupe == "header:Idempotency-Key"


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "sources.x.verify.secret: needs secret (the X-Gitlab-Token) or signing_token"),
        ({"secret": ""}, "sources.x.verify.secret: needs secret or secrets"),
        (
            {"signing_token": "not base64!"},
            "sources.x.verify.signing_token: expected a base64 secret",
        ),
        (
            {"signing_tokens": [SIGNING_TOKEN, "whsec_"]},
            "sources.x.verify.signing_tokens: expected a base64",
        ),
        (
            {"signing_token": SIGNING_TOKEN, "tolerance": "-1s"},
            "sources.x.verify.tolerance: expected a duration",
        ),
        ({"secrets": "x", "secret": ["y"]}, "sources.x.verify.secret: expected a string"),
        (
            {"secret": TOKEN, "tolerance": "5m"},
            "sources.x.verify.tolerance: applies only with a signing_token",
        ),
    ],
)
def test_gitlab_config_problems_name_their_key(config, problem):
    found = problems_for(**config)
    assert found, config
    assert found[0].startswith(problem)
    assert all("not base64!" not in p for p in found)


TOKEN_ONLY = options(secret="a-token-that-random-text-will-not-produce")
SIGNING_ONLY = options(signing_token=SIGNING_TOKEN)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["X-Gitlab-Token", "webhook-id", "webhook-timestamp", "webhook-signature", "x-other"]
        ),
        st.text(),
    ),
    body=st.binary(),
)
def test_gitlab_arbitrary_requests_are_rejected_without_crashing(headers, body):
    for opts in (TOKEN_ONLY, SIGNING_ONLY):
        with pytest.raises(VerificationError):
            check(inbound(headers, body), opts)
