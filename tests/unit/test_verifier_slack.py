import datetime as dt
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Reply, VerificationError
from plugins.verifiers.slack import plugin

# The worked example in Slack's docs:
# https://docs.slack.dev/authentication/verifying-requests-from-slack
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = "slack-signing-secret"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
BODY = b'{"type":"event_callback","event_id":"Ev123","event":{"type":"app_mention"}}'


build = Builders(
    plugin, {"secret": SECRET}, body=BODY, now=NOW, url="https://hooks.example.com/in/slack"
)
options, parse_problems, inbound = build.options, build.problems_for, build.inbound


def signed(body: bytes = BODY, when: dt.datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(when.timestamp()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + digest.hexdigest()}


def test_slack_published_example_is_accepted() -> None:
    headers = {"X-Slack-Request-Timestamp": DOC_TIMESTAMP, "X-Slack-Signature": DOC_SIGNATURE}
    now = dt.datetime.fromtimestamp(int(DOC_TIMESTAMP) + 60, dt.UTC)
    request = inbound(headers, DOC_BODY, now)
    assert plugin.check(request, options({"secret": DOC_SECRET})) is None


def test_slack_published_example_signature_is_what_sign_produces() -> None:
    when = dt.datetime.fromtimestamp(int(DOC_TIMESTAMP), dt.UTC)
    headers = plugin.sign(options({"secret": DOC_SECRET}), DOC_BODY, "https://x", when)
    assert headers == {
        "X-Slack-Request-Timestamp": DOC_TIMESTAMP,
        "X-Slack-Signature": DOC_SIGNATURE,
    }


def test_slack_uppercase_hex_signature_is_accepted() -> None:
    headers = signed()
    headers["X-Slack-Signature"] = "v0=" + headers["X-Slack-Signature"][3:].upper()
    assert plugin.check(inbound(headers), options()) is None


def test_slack_tampered_timestamp_is_rejected() -> None:
    headers = signed()
    headers["X-Slack-Request-Timestamp"] = str(int(NOW.timestamp()) - 1)
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(headers), options())


@pytest.mark.parametrize("missing", ["X-Slack-Signature", "X-Slack-Request-Timestamp"])
def test_slack_missing_header_is_rejected(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with pytest.raises(VerificationError, match=f"missing {missing}"):
        plugin.check(inbound(headers), options())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Slack-Signature", "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
        (
            "X-Slack-Signature",
            "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
        ("X-Slack-Signature", "v0="),
        ("X-Slack-Signature", "v0=zz14d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
        ("X-Slack-Signature", "v0=a2114d57"),
        (
            "X-Slack-Signature",
            " v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
        ("X-Slack-Signature", "v0=\udcff"),
        ("X-Slack-Request-Timestamp", "soon"),
        ("X-Slack-Request-Timestamp", "1714564800.5"),
        ("X-Slack-Request-Timestamp", "-1714564800"),
        ("X-Slack-Request-Timestamp", "nan"),
        ("X-Slack-Request-Timestamp", "1e9"),
        ("X-Slack-Request-Timestamp", "١٧١٤٥٦٤٨٠٠"),
        ("X-Slack-Request-Timestamp", "99999999999999999999"),
        ("X-Slack-Request-Timestamp", "\udcff"),
    ],
)
def test_slack_malformed_header_is_rejected(name: str, value: str) -> None:
    headers = signed()
    headers[name] = value
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers), options())


@pytest.mark.parametrize("skew", [-300, 300])
def test_slack_request_at_the_tolerance_edge_is_accepted(skew: int) -> None:
    assert plugin.check(inbound(signed(when=NOW + dt.timedelta(seconds=skew))), options()) is None


def test_slack_url_verification_is_answered_with_its_challenge() -> None:
    body = b'{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'
    reply = plugin.check(inbound(signed(body), body), options())
    assert isinstance(reply, Reply)
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert json.loads(reply.body) == {
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    }


def test_slack_unsigned_url_verification_is_rejected() -> None:
    body = b'{"challenge":"abc","type":"url_verification"}'
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(signed(b"{}"), body), options())


@pytest.mark.parametrize(
    "body",
    [
        b'{"type":"url_verification"}',
        b'{"type":"url_verification","challenge":""}',
        b'{"type":"url_verification","challenge":42}',
    ],
)
def test_slack_url_verification_without_challenge_is_rejected(body: bytes) -> None:
    with pytest.raises(VerificationError, match="no challenge"):
        plugin.check(inbound(signed(body), body), options())


@pytest.mark.parametrize(
    "body",
    [
        DOC_BODY,
        b"payload=%7B%22type%22%3A%22block_actions%22%7D",
        b"[1, 2]",
        b"\xff\xfe",
        b"",
        b"[" * 5000,
    ],
)
def test_slack_signed_non_event_body_is_an_ordinary_delivery(body: bytes) -> None:
    assert plugin.check(inbound(signed(body), body), options()) is None


def test_slack_sign_output_verifies() -> None:
    headers = plugin.sign(options(), plugin.sample_body, "https://x", NOW)
    assert plugin.check(inbound(headers, plugin.sample_body), options()) is None


def test_slack_default_dedupe_is_the_event_id() -> None:
    assert plugin.default_dedupe == "json:event_id"
    assert json.loads(plugin.sample_body)["event_id"]


def test_slack_missing_secret_is_reported_with_its_key_path() -> None:
    problems = parse_problems({})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.secret")


def test_slack_bad_tolerance_is_reported_with_its_key_path() -> None:
    problems = parse_problems({"secret": SECRET, "tolerance": "soon"})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.tolerance")


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-Slack-Signature", "X-Slack-Request-Timestamp", "x-other"]), st.text()
    ),
    body=st.binary(),
)
def test_slack_arbitrary_input_is_rejected_with_verification_error(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers, body), options())
