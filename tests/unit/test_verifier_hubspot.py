import base64
import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.hubspot import plugin, signed_uri

# Published v3 vectors in HubSpot's official SDK tests:
# https://github.com/HubSpot/hubspot-api-python/blob/master/tests/spec/utils/test_signature.py
# https://github.com/HubSpot/hubspot-api-ruby/blob/master/spec/helpers/signature_spec.rb
DOC_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
DOC_BODY = b"{'example_field':'example_value'}"
DOC_URL = "https://www.example.com/webhook_uri"
DOC_VECTORS = [
    ("15000000", "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="),  # Python SDK
    ("1700000300000", "RnbPH7+UMKVkbV32P8bz450N4M56aPmcru1+D3kSDtw="),  # Ruby SDK
]

SECRET = "hubspot-client-secret"
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
URL = "https://hooks.example.com/in/hubspot"
BODY = b'[{"eventId":1,"subscriptionType":"contact.creation","objectId":123}]'


build = Builders(plugin, {"secret": SECRET}, body=BODY, now=NOW, url=URL)
options, parse_problems, inbound = build.options, build.problems_for, build.inbound


def signed(
    body: bytes = BODY,
    when: dt.datetime = NOW,
    secret: str = SECRET,
    uri: str = URL,
    method: str = "POST",
) -> dict[str, str]:
    stamp = str(int(when.timestamp() * 1000))
    message = f"{method}{uri}".encode() + body + stamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return {
        "X-HubSpot-Request-Timestamp": stamp,
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
    }


@pytest.mark.parametrize(("stamp", "signature"), DOC_VECTORS)
def test_hubspot_published_sdk_vector_is_accepted(stamp: str, signature: str) -> None:
    headers = {"X-HubSpot-Request-Timestamp": stamp, "X-HubSpot-Signature-v3": signature}
    now = dt.datetime.fromtimestamp(int(stamp) / 1000 + 10, dt.UTC)
    request = inbound(headers, DOC_BODY, now, url=DOC_URL)
    assert plugin.check(request, options({"secret": DOC_SECRET})) is None


@pytest.mark.parametrize(("stamp", "signature"), DOC_VECTORS)
def test_hubspot_published_sdk_vector_is_what_sign_produces(stamp: str, signature: str) -> None:
    when = dt.datetime.fromtimestamp(int(stamp) / 1000, dt.UTC)
    headers = plugin.sign(options({"secret": DOC_SECRET}), DOC_BODY, DOC_URL, when)
    assert headers == {"X-HubSpot-Request-Timestamp": stamp, "X-HubSpot-Signature-v3": signature}


def test_hubspot_get_request_signs_its_method_and_query() -> None:
    url = URL + "?portalId=62515&userEmail=a%40b.com"
    headers = signed(b"", method="GET", uri=URL + "?portalId=62515&userEmail=a@b.com")
    assert plugin.check(inbound(headers, b"", url=url, method="GET"), options()) is None


def test_hubspot_method_is_part_of_the_signature() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(signed(), method="PUT"), options())


def test_hubspot_configured_public_url_is_signed_instead_of_the_request_url() -> None:
    public = "https://public.example.com/hooks/hubspot?source=crm"
    configured = options({"secret": SECRET, "public_url": public})
    request = inbound(signed(uri=public), url="http://10.0.0.7:8080/in/hubspot")
    assert plugin.check(request, configured) is None
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(signed()), configured)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (
            "https://x.com/a%3Ab%2Fc%3Fd%40e%21f%24g%27h%28i%29j%2Ak%2Cl%3Bm",
            "https://x.com/a:b/c?d@e!f$g'h(i)j*k,l;m",
        ),
        ("https://x.com/a%3ab%2fc", "https://x.com/a:b/c"),
        ("https://x.com/a%20b%26c%3Dd%25e", "https://x.com/a%20b%26c%3Dd%25e"),
        ("https://x.com/p?q=1", "https://x.com/p?q=1"),
    ],
)
def test_hubspot_decodes_only_the_listed_escapes_before_signing(raw: str, decoded: str) -> None:
    assert signed_uri(raw) == decoded


def test_hubspot_request_url_with_encoded_characters_verifies() -> None:
    url = URL + "?email=a%40b.com&name=Jo%20Doe&t=a%3Ab"
    headers = signed(uri=URL + "?email=a@b.com&name=Jo%20Doe&t=a:b")
    assert plugin.check(inbound(headers, url=url), options()) is None


def test_hubspot_host_header_bytes_in_the_url_do_not_crash() -> None:
    # aiohttp decodes a non-UTF-8 Host header with surrogateescape
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(signed(), url="https://ho\udcffst/in/hubspot"), options())


def test_hubspot_tampered_timestamp_is_rejected() -> None:
    headers = signed()
    headers["X-HubSpot-Request-Timestamp"] = str(int(NOW.timestamp() * 1000) - 1)
    with pytest.raises(VerificationError, match="does not match"):
        plugin.check(inbound(headers), options())


@pytest.mark.parametrize("missing", ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"])
def test_hubspot_missing_header_is_rejected(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with pytest.raises(VerificationError, match=f"missing {missing}"):
        plugin.check(inbound(headers), options())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-HubSpot-Signature-v3", "not base64!"),
        ("X-HubSpot-Signature-v3", "sha256=HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="),
        ("X-HubSpot-Signature-v3", "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw"),
        ("X-HubSpot-Signature-v3", "=" * 8),
        ("X-HubSpot-Signature-v3", "\udcff"),
        ("X-HubSpot-Signature-v3", "ÿÿÿÿ"),
        ("X-HubSpot-Request-Timestamp", str(int(NOW.timestamp()))),  # seconds, not ms
        ("X-HubSpot-Request-Timestamp", "1714564800000.0"),
        ("X-HubSpot-Request-Timestamp", "-1714564800000"),
        ("X-HubSpot-Request-Timestamp", "1" * 40),
        ("X-HubSpot-Request-Timestamp", "NaN"),
        ("X-HubSpot-Request-Timestamp", "\udcff"),
    ],
)
def test_hubspot_malformed_header_is_rejected(name: str, value: str) -> None:
    headers = signed()
    headers[name] = value
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers), options())


@pytest.mark.parametrize("skew", [-300_000, 300_000])
def test_hubspot_request_at_the_tolerance_edge_is_accepted(skew: int) -> None:
    request = inbound(signed(when=NOW + dt.timedelta(milliseconds=skew)))
    assert plugin.check(request, options()) is None


def test_hubspot_configured_tolerance_is_honoured() -> None:
    tight = options({"secret": SECRET, "tolerance": "10s"})
    assert plugin.check(inbound(signed(when=NOW - dt.timedelta(seconds=10))), tight) is None
    with pytest.raises(VerificationError, match="too old"):
        plugin.check(inbound(signed(when=NOW - dt.timedelta(milliseconds=10_001))), tight)


def test_hubspot_sign_output_verifies() -> None:
    headers = plugin.sign(options(), plugin.sample_body, URL, NOW)
    assert plugin.check(inbound(headers, plugin.sample_body), options()) is None


def test_hubspot_sign_uses_the_configured_public_url() -> None:
    public = "https://public.example.com/hooks/hubspot"
    configured = options({"secret": SECRET, "public_url": public})
    headers = plugin.sign(configured, BODY, "http://localhost:8080/in/x", NOW)
    assert plugin.check(inbound(headers, url="http://internal/"), configured) is None


def test_hubspot_has_no_default_dedupe() -> None:
    assert plugin.default_dedupe is None


def test_hubspot_missing_secret_is_reported_with_its_key_path() -> None:
    problems = parse_problems({})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.secret")


@pytest.mark.parametrize("url", ["/in/hubspot", "ftp://x", 42, "https://x/a b", "https://x/\ud800"])
def test_hubspot_bad_public_url_is_reported_with_its_key_path(url: object) -> None:
    problems = parse_problems({"secret": SECRET, "public_url": url})
    assert len(problems) == 1
    assert problems[0].startswith("sources.x.verify.public_url")


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "x-other"]),
        st.text(),
    ),
    body=st.binary(),
)
def test_hubspot_arbitrary_input_is_rejected_with_verification_error(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(VerificationError):
        plugin.check(inbound(headers, body), options())
