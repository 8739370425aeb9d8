import datetime as dt
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.linear import plugin

# Linear publishes no signature vector; this payload (and its "SECRET") is the fixture of
# Linear's SDK tests, whose signatures are computed the same way as here:
# https://github.com/linear/linear/blob/master/packages/sdk/src/_tests/LinearWebhooks.test.ts
SDK_BODY = (
    b'{"action":"create","data":{"id":"2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9",'
    b'"createdAt":"2020-01-23T12:53:18.084Z","updatedAt":"2020-01-23T12:53:18.084Z",'
    b'"archivedAt":null,"body":"Indeed, I think this is definitely an improvement over the previous version.",'
    b'"edited":false,"issueId":"539068e2-ae88-4d09-bd75-22eb4a59612f",'
    b'"userId":"aacdca22-6266-4c0a-ab3c-8fa70a26765c"},"type":"Comment",'
    b'"url":"https://linear.app/issue/LIN-1778/foo-bar#comment-77217de3-fb52-4dad-bb9a-b356beb93de8",'
    b'"createdAt":"2020-01-23T12:53:18.084Z","webhookTimestamp":1677611643000}'
)
SDK_SENT_AT = dt.datetime.fromtimestamp(1677611643, dt.UTC)

SECRET = "lin_wh_secret"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def body_at(when: dt.datetime | None = NOW, **extra: object) -> bytes:
    event: dict[str, object] = {"action": "create", "type": "Issue", "data": {"id": "1"}, **extra}
    if when is not None:
        event["webhookTimestamp"] = int(when.timestamp() * 1000)
    return json.dumps(event).encode()


BODY = body_at()


build = Builders(
    plugin, {"secret": SECRET}, body=BODY, now=NOW, url="https://hooks.example.com/in/linear"
)
options, parse_problems, inbound = build.options, build.problems_for, build.inbound


def signed(body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Linear-Signature": digest, "Linear-Delivery": "d-1", "Linear-Event": "Issue"}


def test_linear_sdk_fixture_is_accepted_when_fresh() -> None:
    request = inbound(signed(SDK_BODY, "SECRET"), SDK_BODY, SDK_SENT_AT + dt.timedelta(seconds=5))
    assert plugin.check(request, options({"secret": "SECRET"})) is None


def test_linear_sdk_fixture_is_rejected_now_that_it_is_stale() -> None:
    with pytest.raises(VerificationError, match="too old"):
        plugin.check(inbound(signed(SDK_BODY, "SECRET"), SDK_BODY), options({"secret": "SECRET"}))


def test_linear_uppercase_hex_signature_is_accepted() -> None:
    headers = signed()
    headers["Linear-Signature"] = headers["Linear-Signature"].upper()
    assert plugin.check(inbound(headers), options()) is None


def test_linear_tampered_webhook_timestamp_is_rejected() -> None:
    fresh = body_at(NOW)
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(signed(body_at(NOW - dt.timedelta(hours=1))), fresh), options())


def test_linear_missing_signature_is_rejected() -> None:
    with pytest.raises(VerificationError, match="missing Linear-Signature"):
        plugin.check(inbound({"Linear-Delivery": "d-1"}), options())


@pytest.mark.parametrize(
    "value",
    [
        "sha256=" + "0" * 64,
        "0" * 63,
        "0" * 65,
        "g" * 64,
        "0" * 64 + " ",
        "\udcff" * 64,
        "\u0660" * 64,  # Arabic-Indic zeros
        "",
    ],
)
def test_linear_malformed_signature_is_rejected(value: str) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound({"Linear-Signature": value}), options())


def test_linear_webhook_timestamp_in_the_future_is_rejected() -> None:
    body = body_at(NOW + dt.timedelta(milliseconds=60_001))
    with pytest.raises(VerificationError, match="future"):
        plugin.check(inbound(signed(body), body), options())


@pytest.mark.parametrize("skew", [-60_000, 60_000])
def test_linear_webhook_timestamp_at_the_tolerance_edge_is_accepted(skew: int) -> None:
    body = body_at(NOW + dt.timedelta(milliseconds=skew))
    assert plugin.check(inbound(signed(body), body), options()) is None


def test_linear_configured_tolerance_is_honoured() -> None:
    loose = options({"secret": SECRET, "tolerance": "5m"})
    body = body_at(NOW - dt.timedelta(seconds=300))
    assert plugin.check(inbound(signed(body), body), loose) is None
    body = body_at(NOW - dt.timedelta(seconds=301))
    with pytest.raises(VerificationError, match="too old"):
        plugin.check(inbound(signed(body), body), loose)


def test_linear_signed_body_without_webhook_timestamp_is_accepted_like_the_sdk() -> None:
    body = body_at(None)
    assert plugin.check(inbound(signed(body), body), options()) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"webhookTimestamp":"1714564800000"}',
        b'{"webhookTimestamp":true}',
        b'{"webhookTimestamp":-1}',
        b'{"webhookTimestamp":1e300}',
        b'{"webhookTimestamp":[1714564800000]}',
        b'{"webhookTimestamp":99999999999999999999}',
    ],
)
def test_linear_malformed_webhook_timestamp_is_rejected(body: bytes) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound(signed(body), body), options())


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"[1]", b'"x"', b"[" * 5000])
def test_linear_signed_body_that_is_not_a_json_object_is_rejected(body: bytes) -> None:
    with pytest.raises(VerificationError, match="JSON"):
        plugin.check(inbound(signed(body), body), options())


def test_linear_sign_output_verifies() -> None:
    headers = plugin.sign(options(), plugin.sample_body, "https://x", NOW)
    assert plugin.check(inbound(headers, plugin.sample_body), options()) is None


def test_linear_default_dedupe_is_the_delivery_header() -> None:
    assert plugin.default_dedupe == "header:Linear-Delivery"
    assert "Linear-Delivery" in plugin.sign(options(), b"{}", "https://x", NOW)


def test_linear_missing_secret_is_reported_with_its_key_path() -> None:
    problems = parse_problems({"tolerance": "1m"})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.secret")


def test_linear_bad_tolerance_is_reported_with_its_key_path() -> None:
    problems = parse_problems({"secret": SECRET, "tolerance": -5})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.tolerance")


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["Linear-Signature", "Linear-Delivery", "x-other"]), st.text()
    ),
    body=st.binary(),
)
def test_linear_arbitrary_input_is_rejected_with_verification_error(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers, body), options())
