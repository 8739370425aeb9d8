"""Twilio: base64 HMAC-SHA1 of the URL + sorted form parameters (or the URL alone, with
``bodySHA256`` in its query, for JSON bodies) in X-Twilio-Signature."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from verifiers import Builders

from gateway.plugin import Inbound, Section, VerificationError
from plugins.verifiers.twilio import check, plugin, port_variants, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"

# The worked example in Twilio's "Secure webhooks" guide:
# https://www.twilio.com/docs/usage/webhooks/webhooks-security
DOCS_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOCS_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

# The vectors in Twilio's Python SDK tests (same token and URL):
# https://github.com/twilio/twilio-python/blob/main/tests/unit/test_request_validator.py
SDK_PARAMS = {**DOCS_PARAMS, "Caller": "+14158675309", "From": "+14158675309"}
SDK_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
SDK_SIGNATURE_WITH_443 = "kvajT1Ptam85bY51eRf/AJRuM3w="  # over https://mycompany.com:443/...
SDK_SIGNATURE_HTTP_WITH_80 = "0ZXoZLH/DfblKGATFgpif+LLRf4="  # over http://mycompany.com:80/...
SDK_SIGNATURE_HTTP_WITH_1234 = "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="  # over http://mycompany.com:1234/...
SDK_REPEATED_BODY = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"
SDK_REPEATED_SIGNATURE = "IK+Dwps556ElfBT0I3Rgjkr1wJU="
SDK_JSON_BODY = b'{"property": "value", "boolean": true}'
SDK_JSON_URL = URL + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
SDK_JSON_SIGNATURE = "a9nBmqA0ju/hNViExpshrM61xv4="


build = Builders(plugin)
options = build.options


def inbound(signature, body, url=URL):
    return build.inbound(
        {"X-Twilio-Signature": signature} if signature is not None else {}, body, url=url
    )


def form(params) -> bytes:
    return urlencode(params).encode()


def signature(token: str, url: str, params: dict[str, str] | None = None) -> str:
    """Twilio's documented algorithm, written out independently of the plugin."""
    data = url + "".join(k + v for k, v in sorted((params or {}).items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_twilio_docs_example_is_accepted():
    assert check(inbound(DOCS_SIGNATURE, form(DOCS_PARAMS)), options(secret=TOKEN)) is None


def test_twilio_docs_example_with_parameters_in_any_order_is_accepted():
    body = form(dict(reversed(DOCS_PARAMS.items())))
    assert check(inbound(DOCS_SIGNATURE, body), options(secret=TOKEN)) is None


def test_twilio_sdk_vector_is_accepted():
    assert check(inbound(SDK_SIGNATURE, form(SDK_PARAMS)), options(secret=TOKEN)) is None


def test_twilio_repeated_parameters_are_sorted_by_value_like_the_sdk():
    assert check(inbound(SDK_REPEATED_SIGNATURE, SDK_REPEATED_BODY), options(secret=TOKEN)) is None
    swapped = b"Sid=CA123&SidAccount=AC123&Digits=1234&Digits=5678"
    assert check(inbound(SDK_REPEATED_SIGNATURE, swapped), options(secret=TOKEN)) is None


def test_twilio_json_body_is_verified_through_body_sha256():
    assert (
        check(inbound(SDK_JSON_SIGNATURE, SDK_JSON_BODY, SDK_JSON_URL), options(secret=TOKEN))
        is None
    )


def test_twilio_json_body_that_does_not_hash_to_body_sha256_is_rejected():
    with pytest.raises(VerificationError, match="body does not match bodySHA256"):
        check(
            inbound(SDK_JSON_SIGNATURE, SDK_JSON_BODY + b" ", SDK_JSON_URL), options(secret=TOKEN)
        )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (SDK_JSON_URL + "&bodySHA256=00", "malformed bodySHA256"),
        (URL + "&bodySHA256=%C3%A9", "malformed bodySHA256"),
        (URL + "&bodySHA256=", "body does not match bodySHA256"),
        (URL + "&bodySHA256=" + "0" * 64, "body does not match bodySHA256"),
    ],
)
def test_twilio_malformed_body_sha256_is_rejected(url, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound(SDK_JSON_SIGNATURE, SDK_JSON_BODY, url), options(secret=TOKEN))


@pytest.mark.parametrize(
    ("url", "signed"),
    [
        (URL, SDK_SIGNATURE_WITH_443),  # Twilio signed with :443, we were called without
        ("https://mycompany.com:443/myapp.php?foo=1&bar=2", SDK_SIGNATURE),  # and the reverse
        ("https://mycompany.com:443/myapp.php?foo=1&bar=2", SDK_SIGNATURE_WITH_443),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", SDK_SIGNATURE_HTTP_WITH_80),
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", SDK_SIGNATURE_HTTP_WITH_1234),
    ],
)
def test_twilio_url_is_accepted_with_and_without_its_default_port(url, signed):
    assert check(inbound(signed, form(SDK_PARAMS), url), options(secret=TOKEN)) is None


def test_twilio_non_default_port_is_part_of_the_signed_url():
    # Twilio's SDKs strip any port; hookgate only lets the default one vary, because a
    # non-default port is part of the URL configured in Twilio (set public_url behind a proxy).
    url = "https://mycompany.com:1234/myapp.php?foo=1&bar=2"
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(SDK_SIGNATURE, form(SDK_PARAMS), url), options(secret=TOKEN))


@pytest.mark.parametrize(
    ("url", "variants"),
    [
        ("https://h/p", ["https://h/p", "https://h:443/p"]),
        ("https://h:443/p?q=1", ["https://h:443/p?q=1", "https://h/p?q=1"]),
        ("http://h?q=:80", ["http://h?q=:80", "http://h:80?q=:80"]),
        ("https://u:pw@h/p", ["https://u:pw@h/p", "https://u:pw@h:443/p"]),
        ("https://[::1]/p", ["https://[::1]/p", "https://[::1]:443/p"]),
        ("https://[::1]:443/p", ["https://[::1]:443/p", "https://[::1]/p"]),
        ("https://h:8443/p", ["https://h:8443/p"]),
        ("wss://h/p", ["wss://h/p"]),
        ("not a url", ["not a url"]),
    ],
)
def test_twilio_port_variants(url, variants):
    assert port_variants(url) == variants


def test_twilio_public_url_replaces_what_the_proxy_showed_us_and_keeps_the_request_query():
    opts = options(secret=TOKEN, public_url="https://mycompany.com/myapp.php?ignored=1")
    internal = "http://10.0.0.7:8080/myapp.php?foo=1&bar=2"
    assert check(inbound(DOCS_SIGNATURE, form(DOCS_PARAMS), internal), opts) is None
    json_url = "http://10.0.0.7:8080/myapp.php?" + SDK_JSON_URL.partition("?")[2]
    assert check(inbound(SDK_JSON_SIGNATURE, SDK_JSON_BODY, json_url), opts) is None


def test_twilio_without_public_url_a_rewritten_url_is_rejected():
    internal = "http://10.0.0.7:8080/myapp.php?foo=1&bar=2"
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(DOCS_SIGNATURE, form(DOCS_PARAMS), internal), options(secret=TOKEN))


@pytest.mark.parametrize(
    ("body", "url"),
    [
        (form({**DOCS_PARAMS, "Digits": "9999"}), URL),  # a changed parameter
        (form({**DOCS_PARAMS, "Extra": "1"}), URL),  # an added one
        (form({k: v for k, v in DOCS_PARAMS.items() if k != "To"}), URL),  # a dropped one
        (form(DOCS_PARAMS), "https://mycompany.com/myapp.php?foo=1&bar=3"),  # another query
        (form(DOCS_PARAMS), "https://evil.example/myapp.php?foo=1&bar=2"),  # another host
        (form(DOCS_PARAMS) + b"&Digits=1234", URL),  # a repeated one
    ],
)
def test_twilio_tampered_request_is_rejected(body, url):
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(DOCS_SIGNATURE, body, url), options(secret=TOKEN))


def test_twilio_blank_parameters_are_signed_too():
    params = {**DOCS_PARAMS, "FromZip": ""}
    assert (
        check(inbound(signature(TOKEN, URL, params), form(params)), options(secret=TOKEN)) is None
    )
    with pytest.raises(VerificationError):
        check(inbound(signature(TOKEN, URL, DOCS_PARAMS), form(params)), options(secret=TOKEN))


def test_twilio_missing_header_is_rejected():
    with pytest.raises(VerificationError, match="missing X-Twilio-Signature header"):
        check(inbound(None, form(DOCS_PARAMS)), options(secret=TOKEN))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "missing X-Twilio-Signature header"),
        ("not base64!", "malformed base64"),
        (DOCS_SIGNATURE[:-2], "signature does not match"),
        ("sha1=" + DOCS_SIGNATURE, "malformed base64"),
        (base64.b64decode(DOCS_SIGNATURE).hex(), "signature does not match"),
        ("\udcff" + DOCS_SIGNATURE, "malformed base64"),
        (DOCS_SIGNATURE + "," + DOCS_SIGNATURE, "malformed base64"),
    ],
)
def test_twilio_malformed_header_is_rejected(value, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound(value, form(DOCS_PARAMS)), options(secret=TOKEN))


@pytest.mark.parametrize(
    ("body", "url", "reason"),
    [
        (b"\xff\xfe", URL, "not UTF-8 url-encoded"),
        (b"Body=%ff", URL, "not UTF-8 url-encoded"),
        (form(DOCS_PARAMS), "https://\udcffmycompany.com/myapp.php", "malformed URL"),
    ],
)
def test_twilio_undecodable_request_is_rejected(body, url, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound(DOCS_SIGNATURE, body, url), options(secret=TOKEN))


def test_twilio_sign_round_trips_with_the_form_sample():
    opts = options(secret=TOKEN)
    url = "https://hooks.example.com/in/twilio"
    headers = sign(opts, plugin.sample_body, url, NOW)
    assert headers["I-Twilio-Idempotency-Token"]
    assert plugin.sample_content_type == "application/x-www-form-urlencoded"
    assert check(inbound(headers["X-Twilio-Signature"], plugin.sample_body, url), opts) is None


def test_twilio_sign_reproduces_the_published_signatures():
    opts = options(secret=TOKEN)
    assert sign(opts, form(DOCS_PARAMS), URL, NOW)["X-Twilio-Signature"] == DOCS_SIGNATURE
    assert sign(opts, SDK_JSON_BODY, SDK_JSON_URL, NOW)["X-Twilio-Signature"] == SDK_JSON_SIGNATURE


def test_twilio_sign_uses_public_url_like_check():
    opts = options(secret=TOKEN, public_url="https://mycompany.com/myapp.php")
    internal = "http://127.0.0.1:8080/myapp.php?foo=1&bar=2"
    headers = sign(opts, form(DOCS_PARAMS), internal, NOW)
    assert headers["X-Twilio-Signature"] == DOCS_SIGNATURE
    assert check(inbound(headers["X-Twilio-Signature"], form(DOCS_PARAMS), internal), opts) is None


def test_twilio_dedupes_on_the_idempotency_token_header():
    assert plugin.default_dedupe == "header:I-Twilio-Idempotency-Token"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, ["sources.x.verify.secret: needs secret or secrets"]),
        (
            {"secret": TOKEN, "public_url": "mycompany.com/myapp.php"},
            [
                "sources.x.verify.public_url: expected an absolute http(s) URL, got 'mycompany.com/myapp.php'"
            ],
        ),
        (
            {"secret": TOKEN, "public_url": ["https://a"]},
            ["sources.x.verify.public_url: expected a string, got ['https://a']"],
        ),
    ],
)
def test_twilio_config_problems_carry_their_key_path(config, expected):
    problems: list[str] = []
    plugin.parse(Section(config, "sources.x.verify", problems))
    assert problems == expected


TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["X-Twilio-Signature", "x-other"]), TEXT),
    body=st.one_of(
        st.binary(),
        st.dictionaries(TEXT, TEXT).map(lambda d: urlencode(d, errors="surrogatepass").encode()),
    ),
    url=st.sampled_from([URL, SDK_JSON_URL, "http://mycompany.com:80/x", "not a url"]),
)
def test_twilio_arbitrary_requests_are_never_accepted_and_never_crash(headers, body, url):
    request = Inbound("POST", url, CIMultiDict(headers), {}, body, NOW)
    with pytest.raises(VerificationError):
        check(request, options(secret=TOKEN))
