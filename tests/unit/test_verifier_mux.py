import datetime as dt
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.mux import plugin

# The vectors in Mux's official Node SDK tests:
# https://github.com/muxinc/mux-node-sdk/blob/master/tests/api-resources/webhooks.test.ts
SDK_SECRET = "SuperSecret123"
SDK_STAMP = "1565125718"
SDK_VECTORS = [
    (b'{"test":"body"}', "854ece4c22acef7c66b57d4e504153bc512595e8e9c772ece2a68150548c19a7"),
    (
        b'{"test":{"nested":{"nanos":718234, "seconds":1691711005}}}',
        "bd315c24bce1c2b8ad325696f26530c8ef7d7d830afb7c1381903705d04607be",
    ),
]
SDK_NOW = dt.datetime.fromtimestamp(int(SDK_STAMP), dt.UTC)
SDK_BODY, SDK_HASH = SDK_VECTORS[0]

SECRET = "mux-webhook-signing-secret"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
BODY = b'{"type":"video.asset.ready","id":"3a56ac3d","object":{"type":"asset","id":"a1"}}'
STAMP = str(int(NOW.timestamp()))


build = Builders(
    plugin, {"secret": SECRET}, body=BODY, now=NOW, url="https://hooks.example.com/in/mux"
)
options, parse_problems, inbound = build.options, build.problems_for, build.inbound


def v1(body: bytes, stamp: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


GOOD = v1(BODY, STAMP)


def signed(body: bytes = BODY, when: dt.datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(when.timestamp()))
    return {"Mux-Signature": f"t={stamp},v1={v1(body, stamp, secret)}"}


@pytest.mark.parametrize(("body", "digest"), SDK_VECTORS)
def test_mux_sdk_vector_is_accepted(body: bytes, digest: str) -> None:
    headers = {"Mux-Signature": f"t={SDK_STAMP},v1={digest}"}
    assert plugin.check(inbound(headers, body, SDK_NOW), options({"secret": SDK_SECRET})) is None


@pytest.mark.parametrize(("body", "digest"), SDK_VECTORS)
def test_mux_sdk_vector_is_what_sign_produces(body: bytes, digest: str) -> None:
    headers = plugin.sign(options({"secret": SDK_SECRET}), body, "https://x", SDK_NOW)
    assert headers == {"Mux-Signature": f"t={SDK_STAMP},v1={digest}"}


@pytest.mark.parametrize(
    "value",
    [
        f"t={SDK_STAMP},v1=invalid-sig,v1={SDK_HASH}",
        f"t={SDK_STAMP},v2={SDK_HASH},v1={SDK_HASH}",
    ],
)
def test_mux_sdk_multiple_signature_cases_are_accepted(value: str) -> None:
    request = inbound({"Mux-Signature": value}, SDK_BODY, SDK_NOW)
    assert plugin.check(request, options({"secret": SDK_SECRET})) is None


def test_mux_sdk_vector_six_minutes_later_is_rejected() -> None:
    request = inbound(
        {"Mux-Signature": f"t={SDK_STAMP},v1={SDK_HASH}"},
        SDK_BODY,
        SDK_NOW + dt.timedelta(minutes=6),
    )
    with pytest.raises(VerificationError, match="too old"):
        plugin.check(request, options({"secret": SDK_SECRET}))


def test_mux_tampered_timestamp_is_rejected() -> None:
    headers = {"Mux-Signature": f"t={int(STAMP) + 1},v1={GOOD}"}
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(headers), options())


def test_mux_missing_header_is_rejected() -> None:
    with pytest.raises(VerificationError, match="missing Mux-Signature"):
        plugin.check(inbound({}), options())


@pytest.mark.parametrize(
    "value",
    [
        GOOD,
        f"t={STAMP}",
        f"t={STAMP},v2={GOOD}",
        f"t={STAMP},v1=invalid-sig",
        f"v1={GOOD}",
        f"t={STAMP},t={STAMP},v1={GOOD}",
        f"t={STAMP}.0,v1={GOOD}",
        f"t=1e9,v1={GOOD}",
        f"t={STAMP}{STAMP},v1={GOOD}",
        f"t={STAMP},v1={GOOD},,",
        f"t={STAMP},=v1",
        f"t={STAMP},v1=\udcff",
        f"t=\udcff,v1={GOOD}",
    ],
)
def test_mux_malformed_header_is_rejected(value: str) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound({"Mux-Signature": value}), options())


@pytest.mark.parametrize("skew", [-300, 300])
def test_mux_request_at_the_tolerance_edge_is_accepted(skew: int) -> None:
    assert plugin.check(inbound(signed(when=NOW + dt.timedelta(seconds=skew))), options()) is None


def test_mux_sign_output_verifies() -> None:
    headers = plugin.sign(options(), plugin.sample_body, "https://x", NOW)
    assert plugin.check(inbound(headers, plugin.sample_body), options()) is None


def test_mux_default_dedupe_is_the_event_id() -> None:
    assert plugin.default_dedupe == "json:id"
    assert json.loads(plugin.sample_body)["id"]


def test_mux_missing_secret_is_reported_with_its_key_path() -> None:
    problems = parse_problems({})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.secret")


def test_mux_bad_tolerance_is_reported_with_its_key_path() -> None:
    problems = parse_problems({"secret": SECRET, "tolerance": "5 minutes"})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.tolerance")


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["Mux-Signature", "x-other"]), st.text()),
    body=st.binary(),
)
def test_mux_arbitrary_input_is_rejected_with_verification_error(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers, body), options())
