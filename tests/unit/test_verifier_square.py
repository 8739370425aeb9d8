import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.square import plugin

# The vectors in Square's official Python SDK tests:
# https://github.com/square/square-python-sdk/blob/master/tests/integration/test_webhooks_helper.py
SDK_BODY = (
    b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification",'
    b'"event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z",'
    b'"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
)
SDK_SIGNATURE = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="
SDK_KEY = "Ibxx_5AKakO-3qeNVR61Dw"
SDK_URL = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
SDK_ESCAPED = (
    b'{"data":{"type":"webhooks","id":">id<"}}',
    "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U=",
    "signature-key",
    "https://webhook.site/webhooks",
)

SECRET = "square-signature-key"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
URL = "https://hooks.example.com/in/square"
BODY = b'{"merchant_id":"M1","type":"payment.created","event_id":"e-1","data":{"id":"p1"}}'


build = Builders(plugin, {"secret": SECRET}, body=BODY, now=NOW, url=URL)
options, parse_problems = build.options, build.problems_for


def inbound(headers, body=BODY, url=URL):
    return build.inbound(headers, body, url=url)


def signed(body: bytes = BODY, secret: str = SECRET, url: str = URL) -> dict[str, str]:
    digest = hmac.new(secret.encode(), url.encode() + body, hashlib.sha256).digest()
    return {"X-Square-HmacSha256-Signature": base64.b64encode(digest).decode()}


def test_square_sdk_vector_is_accepted_with_the_configured_notification_url() -> None:
    configured = options({"secret": SDK_KEY, "public_url": SDK_URL})
    headers = {"x-square-hmacsha256-signature": SDK_SIGNATURE}
    assert plugin.check(inbound(headers, SDK_BODY, "http://10.0.0.3/in/square"), configured) is None


def test_square_sdk_vector_is_accepted_with_the_request_url() -> None:
    headers = {"x-square-hmacsha256-signature": SDK_SIGNATURE}
    assert plugin.check(inbound(headers, SDK_BODY, SDK_URL), options({"secret": SDK_KEY})) is None


def test_square_sdk_escaped_body_vector_is_accepted() -> None:
    body, signature, key, url = SDK_ESCAPED
    headers = {"x-square-hmacsha256-signature": signature}
    assert plugin.check(inbound(headers, body, url), options({"secret": key})) is None


def test_square_sdk_vector_is_what_sign_produces() -> None:
    headers = plugin.sign(options({"secret": SDK_KEY}), SDK_BODY, SDK_URL, NOW)
    assert headers == {"X-Square-HmacSha256-Signature": SDK_SIGNATURE}


@pytest.mark.parametrize(
    "url",
    [
        "https://webhook.site/79a4f3a-dcfa-49ee-bac5-9d0edad886b9",
        "http://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9",
        SDK_URL + "/",
        SDK_URL + "?x=1",
    ],
)
def test_square_sdk_vector_with_another_url_is_rejected(url: str) -> None:
    headers = {"x-square-hmacsha256-signature": SDK_SIGNATURE}
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(headers, SDK_BODY, url), options({"secret": SDK_KEY}))


def test_square_sdk_vector_with_another_key_is_rejected() -> None:
    headers = {"x-square-hmacsha256-signature": SDK_SIGNATURE}
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(
            inbound(headers, SDK_BODY, SDK_URL), options({"secret": "MCmhFRxGX82xMwg5FsaoQA"})
        )


def test_square_sdk_vector_with_a_reformatted_body_is_rejected() -> None:
    headers = {"x-square-hmacsha256-signature": SDK_SIGNATURE}
    body = json.dumps(json.loads(SDK_BODY), indent=2).encode()
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(headers, body, SDK_URL), options({"secret": SDK_KEY}))


def test_square_missing_header_is_rejected() -> None:
    with pytest.raises(VerificationError, match="missing X-Square-HmacSha256-Signature"):
        plugin.check(inbound({"X-Square-Signature": "abc="}), options())


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        "sha256=" + SDK_SIGNATURE,
        SDK_SIGNATURE + SDK_SIGNATURE,
        SDK_SIGNATURE[:-2],
        "1z2n3DEJJiUPKcPzQo1ftvbxGdw=",  # an old SHA-1 x-square-signature
        "=",
        "\udcff",
        "é" * 44,
    ],
)
def test_square_malformed_header_is_rejected(value: str) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound({"X-Square-HmacSha256-Signature": value}), options())


def test_square_host_header_bytes_in_the_url_do_not_crash() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(signed(), url="https://ho\udcffst/in/square"), options())


def test_square_sign_output_verifies() -> None:
    headers = plugin.sign(options(), plugin.sample_body, URL, NOW)
    assert plugin.check(inbound(headers, plugin.sample_body), options()) is None


def test_square_sign_uses_the_configured_public_url() -> None:
    configured = options({"secret": SECRET, "public_url": URL})
    headers = plugin.sign(configured, BODY, "http://localhost:8080/in/square", NOW)
    assert plugin.check(inbound(headers, url="http://10.0.0.3/"), configured) is None


def test_square_default_dedupe_is_the_event_id() -> None:
    assert plugin.default_dedupe == "json:event_id"
    assert json.loads(plugin.sample_body)["event_id"]


def test_square_missing_key_is_reported_with_its_key_path() -> None:
    problems = parse_problems({"public_url": URL})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.secret")


@pytest.mark.parametrize("url", ["/in/square", "webhook.site/x", ["https://x"], "https://x/\n"])
def test_square_bad_public_url_is_reported_with_its_key_path(url: object) -> None:
    problems = parse_problems({"secret": SECRET, "public_url": url})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.public_url")


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-Square-HmacSha256-Signature", "x-other"]), st.text()
    ),
    body=st.binary(),
)
def test_square_arbitrary_input_is_rejected_with_verification_error(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers, body), options())
