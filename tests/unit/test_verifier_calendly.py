import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.calendly import plugin

# Calendly documents the scheme but publishes no vector with its signing key:
# https://developer.calendly.com/api-docs/overview/webhooks/webhook-signatures
SECRET = "calendly-webhook-signing-key"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
BODY = b'{"event":"invitee.created","payload":{"email":"test@example.com"}}'
STAMP = str(int(NOW.timestamp()))


build = Builders(
    plugin, {"secret": SECRET}, body=BODY, now=NOW, url="https://hooks.example.com/in/calendly"
)
options, parse_problems, inbound = build.options, build.problems_for, build.inbound


def v1(body: bytes, stamp: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


GOOD = v1(BODY, STAMP)


def signed(body: bytes = BODY, when: dt.datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(when.timestamp()))
    return {"Calendly-Webhook-Signature": f"t={stamp},v1={v1(body, stamp, secret)}"}


def test_calendly_header_name_is_case_insensitive() -> None:
    headers = {"calendly-webhook-signature": signed()["Calendly-Webhook-Signature"]}
    assert plugin.check(inbound(headers), options()) is None


def test_calendly_tampered_timestamp_is_rejected() -> None:
    headers = {"Calendly-Webhook-Signature": f"t={int(STAMP) - 1},v1={GOOD}"}
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(headers), options())


def test_calendly_missing_header_is_rejected() -> None:
    with pytest.raises(VerificationError, match="missing Calendly-Webhook-Signature"):
        plugin.check(inbound({"Stripe-Signature": f"t={STAMP},v1={GOOD}"}), options())


@pytest.mark.parametrize(
    "value",
    [
        GOOD,
        f"v1={GOOD}",
        f"t={STAMP}",
        f"t={STAMP},v1=",
        f"t={STAMP},v0={GOOD}",
        f"t={STAMP};v1={GOOD}",
        f"t={STAMP},t={STAMP},v1={GOOD}",
        f"t=,v1={GOOD}",
        f"t=now,v1={GOOD}",
        f"t={STAMP}.5,v1={GOOD}",
        f"t=-{STAMP},v1={GOOD}",
        f"t={STAMP},v1={GOOD},",
        f"t={STAMP},v1={GOOD[:40]}",
        f"t={STAMP},v1=\udcff",
        f"t=\udcff,v1={GOOD}",
        ",",
    ],
)
def test_calendly_malformed_header_is_rejected(value: str) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound({"Calendly-Webhook-Signature": value}), options())


@pytest.mark.parametrize("skew", [-180, 180])
def test_calendly_request_at_the_tolerance_edge_is_accepted(skew: int) -> None:
    assert plugin.check(inbound(signed(when=NOW + dt.timedelta(seconds=skew))), options()) is None


def test_calendly_sign_output_verifies() -> None:
    headers = plugin.sign(options(), plugin.sample_body, "https://x", NOW)
    assert plugin.check(inbound(headers, plugin.sample_body), options()) is None


def test_calendly_has_no_default_dedupe() -> None:
    assert plugin.default_dedupe is None


def test_calendly_missing_secret_is_reported_with_its_key_path() -> None:
    problems = parse_problems({})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.secret")


def test_calendly_bad_tolerance_is_reported_with_its_key_path() -> None:
    problems = parse_problems({"secret": SECRET, "tolerance": True})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.tolerance")


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["Calendly-Webhook-Signature", "x-other"]), st.text()),
    body=st.binary(),
)
def test_calendly_arbitrary_input_is_rejected_with_verification_error(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers, body), options())
