import datetime as dt
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.paddle import plugin

# The vector in Paddle's official Python SDK tests (three secrets, only the last matches):
# https://github.com/PaddleHQ/paddle-python-sdk/blob/main/tests/Unit/Notification/test_Verifier.py
SDK_HEADER = (
    "ts=1696195954;h1=dummy;h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02"
)
SDK_BODY = b"hello-world"
SDK_SECRETS = [
    "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_TjIG2BXbm83HPXqNfziwe506sBEdqL/4",
    "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_vB/yIOnTOCWIvpBadM5jzBZPHc7OmdSo",
    "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh",
]
SDK_NOW = dt.datetime.fromtimestamp(1696195954, dt.UTC)

SECRET = "pdl_ntfset_01hv8x_secret"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
BODY = b'{"event_id":"evt_01","event_type":"transaction.completed","data":{"id":"txn_01"}}'


build = Builders(
    plugin, {"secret": SECRET}, body=BODY, now=NOW, url="https://hooks.example.com/in/paddle"
)
options, parse_problems, inbound = build.options, build.problems_for, build.inbound


def h1(body: bytes, stamp: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{stamp}:".encode() + body, hashlib.sha256).hexdigest()


def signed(body: bytes = BODY, when: dt.datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(when.timestamp()))
    return {"Paddle-Signature": f"ts={stamp};h1={h1(body, stamp, secret)}"}


def test_paddle_sdk_vector_is_accepted_with_its_rotated_secrets() -> None:
    request = inbound({"Paddle-Signature": SDK_HEADER}, SDK_BODY, SDK_NOW)
    assert plugin.check(request, options({"secrets": SDK_SECRETS})) is None


def test_paddle_sdk_vector_is_rejected_without_the_matching_secret() -> None:
    request = inbound({"Paddle-Signature": SDK_HEADER}, SDK_BODY, SDK_NOW)
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(request, options({"secrets": SDK_SECRETS[:2]}))


def test_paddle_sdk_vector_is_what_sign_produces() -> None:
    headers = plugin.sign(options({"secret": SDK_SECRETS[2]}), SDK_BODY, "https://x", SDK_NOW)
    assert headers == {"Paddle-Signature": SDK_HEADER.replace("h1=dummy;", "")}


def test_paddle_header_with_spaces_after_separators_is_accepted() -> None:
    headers = {"Paddle-Signature": signed()["Paddle-Signature"].replace(";", "; ")}
    assert plugin.check(inbound(headers), options()) is None


def test_paddle_tampered_timestamp_is_rejected() -> None:
    stamp = str(int(NOW.timestamp()))
    headers = {"Paddle-Signature": f"ts={int(stamp) - 1};h1={h1(BODY, stamp)}"}
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(headers), options())


def test_paddle_missing_header_is_rejected() -> None:
    with pytest.raises(VerificationError, match="missing Paddle-Signature"):
        plugin.check(inbound({}), options())


STAMP = str(int(NOW.timestamp()))
GOOD = h1(BODY, STAMP)


@pytest.mark.parametrize(
    "value",
    [
        GOOD,
        f"h1={GOOD}",
        f"ts={STAMP}",
        f"ts={STAMP};h1=",
        f"ts={STAMP};h1=dummy",
        f"ts={STAMP},h1={GOOD}",
        f"ts={STAMP};ts={STAMP};h1={GOOD}",
        f"ts=;h1={GOOD}",
        f"ts=soon;h1={GOOD}",
        f"ts={STAMP}.0;h1={GOOD}",
        f"ts=١٧١٤٥٦٤٨٠٠;h1={GOOD}",
        f"ts={STAMP};h1={GOOD};",
        f"ts={STAMP};;h1={GOOD}",
        f"ts={STAMP};h1={GOOD[:-1]}",
        f"ts={STAMP};h1=\udcff",
        f"ts=\udcff;h1={GOOD}",
        "=",
        ";",
    ],
)
def test_paddle_malformed_header_is_rejected(value: str) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound({"Paddle-Signature": value}), options())


@pytest.mark.parametrize("skew", [-5, 5])
def test_paddle_request_at_the_five_second_edge_is_accepted(skew: int) -> None:
    assert plugin.check(inbound(signed(when=NOW + dt.timedelta(seconds=skew))), options()) is None


def test_paddle_header_with_several_h1_entries_is_accepted_if_any_matches() -> None:
    other = h1(BODY, STAMP, "pdl_other")
    headers = {"Paddle-Signature": f"ts={STAMP};h1={other};h1={GOOD}"}
    assert plugin.check(inbound(headers), options()) is None


def test_paddle_sign_output_verifies() -> None:
    headers = plugin.sign(options(), plugin.sample_body, "https://x", NOW)
    assert plugin.check(inbound(headers, plugin.sample_body), options()) is None


def test_paddle_default_dedupe_is_the_event_id() -> None:
    assert plugin.default_dedupe == "json:event_id"
    assert json.loads(plugin.sample_body)["event_id"]


def test_paddle_missing_secret_is_reported_with_its_key_path() -> None:
    problems = parse_problems({})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.secret")


def test_paddle_bad_tolerance_is_reported_with_its_key_path() -> None:
    problems = parse_problems({"secret": SECRET, "tolerance": "five"})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.tolerance")


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["Paddle-Signature", "x-other"]), st.text()),
    body=st.binary(),
)
def test_paddle_arbitrary_input_is_rejected_with_verification_error(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers, body), options())
