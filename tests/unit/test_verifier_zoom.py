import datetime as dt
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Reply, VerificationError
from plugins.verifiers.zoom import plugin

# Zoom publishes the scheme but no signature vector with its secret token; the
# url_validation body below is the one in its docs:
# https://developers.zoom.us/docs/api/webhooks/#validate-your-webhook-endpoint
SECRET = "zoom-secret-token"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
BODY = b'{"event":"meeting.started","event_ts":1714564800000,"payload":{"object":{"id":"1"}}}'
VALIDATION = b'{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}'


build = Builders(
    plugin, {"secret": SECRET}, body=BODY, now=NOW, url="https://hooks.example.com/in/zoom"
)
options, parse_problems, inbound = build.options, build.problems_for, build.inbound


def signed(body: bytes = BODY, when: dt.datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(when.timestamp()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {"x-zm-request-timestamp": stamp, "x-zm-signature": "v0=" + digest.hexdigest()}


def encrypted(token: str, secret: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def test_zoom_header_names_are_case_insensitive() -> None:
    headers = {name.upper(): value for name, value in signed().items()}
    assert plugin.check(inbound(headers), options()) is None


def test_zoom_tampered_timestamp_is_rejected() -> None:
    headers = signed()
    headers["x-zm-request-timestamp"] = str(int(NOW.timestamp()) + 1)
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(headers), options())


@pytest.mark.parametrize("missing", ["x-zm-signature", "x-zm-request-timestamp"])
def test_zoom_missing_header_is_rejected(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with pytest.raises(VerificationError, match=f"missing {missing}"):
        plugin.check(inbound(headers), options())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-zm-signature", "0" * 64),
        ("x-zm-signature", "v1=" + "0" * 64),
        ("x-zm-signature", "v0=" + "0" * 63),
        ("x-zm-signature", "v0=" + "g" * 64),
        ("x-zm-signature", "v0=" + "0" * 64 + ",v0=" + "0" * 64),
        ("x-zm-signature", "v0=\udcff"),
        ("x-zm-request-timestamp", "1714564800000.0"),
        ("x-zm-request-timestamp", "+1714564800"),
        ("x-zm-request-timestamp", "inf"),
        (
            "x-zm-request-timestamp",
            "\uff11\uff17\uff11\uff14\uff15\uff16\uff14\uff18\uff10\uff10",
        ),  # fullwidth digits
        ("x-zm-request-timestamp", "\udcff"),
    ],
)
def test_zoom_malformed_header_is_rejected(name: str, value: str) -> None:
    headers = signed()
    headers[name] = value
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers), options())


@pytest.mark.parametrize("skew", [-300, 300])
def test_zoom_request_at_the_tolerance_edge_is_accepted(skew: int) -> None:
    assert plugin.check(inbound(signed(when=NOW + dt.timedelta(seconds=skew))), options()) is None


def test_zoom_url_validation_is_answered_with_the_encrypted_token() -> None:
    reply = plugin.check(inbound(signed(VALIDATION), VALIDATION), options())
    assert isinstance(reply, Reply)
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert json.loads(reply.body) == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": encrypted("qgg8vlvZRS6UYooatFL8Aw", SECRET),
    }


@pytest.mark.parametrize("secret", ["old-token", "new-token"])
def test_zoom_url_validation_is_answered_with_the_secret_that_signed_it(secret: str) -> None:
    rotated = options({"secrets": ["old-token", "new-token"]})
    reply = plugin.check(inbound(signed(VALIDATION, secret=secret), VALIDATION), rotated)
    assert isinstance(reply, Reply)
    assert json.loads(reply.body)["encryptedToken"] == encrypted("qgg8vlvZRS6UYooatFL8Aw", secret)


def test_zoom_unsigned_url_validation_is_rejected() -> None:
    with pytest.raises(VerificationError, match="missing"):
        plugin.check(inbound({}, VALIDATION), options())


def test_zoom_url_validation_with_a_bad_signature_is_rejected() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(signed(VALIDATION, secret="attacker"), VALIDATION), options())


@pytest.mark.parametrize(
    "body",
    [
        b'{"event":"endpoint.url_validation"}',
        b'{"event":"endpoint.url_validation","payload":[]}',
        b'{"event":"endpoint.url_validation","payload":{"plainToken":""}}',
        b'{"event":"endpoint.url_validation","payload":{"plainToken":7}}',
    ],
)
def test_zoom_url_validation_without_plain_token_is_rejected(body: bytes) -> None:
    with pytest.raises(VerificationError, match="plainToken"):
        plugin.check(inbound(signed(body), body), options())


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"\xff", b'"endpoint.url_validation"', b"[" * 5000]
)
def test_zoom_signed_non_event_body_is_an_ordinary_delivery(body: bytes) -> None:
    assert plugin.check(inbound(signed(body), body), options()) is None


def test_zoom_sign_output_verifies() -> None:
    headers = plugin.sign(options(), plugin.sample_body, "https://x", NOW)
    assert plugin.check(inbound(headers, plugin.sample_body), options()) is None


def test_zoom_has_no_default_dedupe() -> None:
    assert plugin.default_dedupe is None


def test_zoom_missing_secret_is_reported_with_its_key_path() -> None:
    problems = parse_problems({})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.secret")


def test_zoom_bad_secrets_list_is_reported_with_its_key_path() -> None:
    problems = parse_problems({"secrets": [1, 2]})
    assert problems and problems[0].startswith("sources.x.verify.secrets")


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["x-zm-signature", "x-zm-request-timestamp", "x-other"]), st.text()
    ),
    body=st.binary(),
)
def test_zoom_arbitrary_input_is_rejected_with_verification_error(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers, body), options())
