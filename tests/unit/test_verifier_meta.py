"""Meta: ``sha256=`` + hex HMAC-SHA256 of the body in X-Hub-Signature-256, and the
hub.challenge GET that verifies the callback URL."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, MultiDict
from verifiers import Builders

from gateway.plugin import Inbound, Reply, Section, VerificationError
from plugins.verifiers.meta import check, plugin, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
SECRET = "app-secret"
# The verification request in Meta's "Getting Started" guide uses these values:
# https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests
VERIFY_TOKEN = "meatyhamhock"
CHALLENGE = "1158201444"
BODY = b'{"object":"page","entry":[]}'
# Meta publishes no signature vector; this known answer was computed independently with
# `printf '%s' "$BODY" | openssl dgst -sha256 -hmac app-secret`.
KNOWN_SIGNATURE = "sha256=e6e9d7a842a48e17f43a34d6125d0d933e2aab92ee37f0993a4d493b50e3d438"


build = Builders(plugin, {}, body=BODY, url="https://hooks.example.com/in/meta")
inbound = build.inbound


def options(**config):
    return build.options({"verify_token": VERIFY_TOKEN, **config})


def subscribe(query):
    return build.inbound(
        body=b"", url="https://hooks.example.com/in/meta?...", method="GET", query=query
    )


def signature(secret: str, body: bytes = BODY) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


VALID_QUERY = {
    "hub.mode": "subscribe",
    "hub.challenge": CHALLENGE,
    "hub.verify_token": VERIFY_TOKEN,
}


def test_meta_verification_request_is_answered_with_the_raw_challenge():
    reply = check(subscribe(VALID_QUERY), options(secret=SECRET))
    assert reply == Reply(b"1158201444", content_type="text/plain", status=200)


def test_meta_challenge_is_echoed_byte_for_byte_whatever_it_holds():
    query = {**VALID_QUERY, "hub.challenge": "abc 123 ✓"}
    reply = check(subscribe(query), options(secret=SECRET))
    assert reply is not None
    assert reply.body == "abc 123 ✓".encode()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({**VALID_QUERY, "hub.verify_token": "wrong"}, "hub.verify_token does not match"),
        (
            {**VALID_QUERY, "hub.verify_token": VERIFY_TOKEN + "x"},
            "hub.verify_token does not match",
        ),
        ({**VALID_QUERY, "hub.verify_token": ""}, "hub.verify_token does not match"),
        (
            {k: v for k, v in VALID_QUERY.items() if k != "hub.verify_token"},
            "hub.verify_token does not match",
        ),
        ({**VALID_QUERY, "hub.verify_token": "\udcff"}, "malformed hub.verify_token"),
        ({**VALID_QUERY, "hub.mode": "unsubscribe"}, r"hub\.mode=subscribe"),
        ({k: v for k, v in VALID_QUERY.items() if k != "hub.mode"}, r"hub\.mode=subscribe"),
        ({k: v for k, v in VALID_QUERY.items() if k != "hub.challenge"}, "without hub.challenge"),
        ({**VALID_QUERY, "hub.challenge": "\ud800"}, "malformed hub.challenge"),
        ({}, r"hub\.mode=subscribe"),
    ],
)
def test_meta_verification_request_without_our_token_is_rejected(query, reason):
    with pytest.raises(VerificationError, match=reason):
        check(subscribe(query), options(secret=SECRET))


def test_meta_signed_get_is_still_a_verification_request():
    # A GET is never a notification: a valid body signature does not stand in for the token.
    request = Inbound(
        "GET",
        "https://hooks.example.com/in/meta",
        CIMultiDict({"X-Hub-Signature-256": KNOWN_SIGNATURE}),
        {},
        BODY,
        NOW,
    )
    with pytest.raises(VerificationError, match=r"hub\.mode=subscribe"):
        check(request, options(secret=SECRET))


def test_meta_known_signature_is_accepted():
    assert check(inbound({"X-Hub-Signature-256": KNOWN_SIGNATURE}), options(secret=SECRET)) is None


def test_meta_signed_notification_needs_no_verify_token_in_the_query():
    request = inbound(
        {"x-hub-signature-256": KNOWN_SIGNATURE.upper().replace("SHA256=", "sha256=")}
    )
    assert check(request, options(secret=SECRET)) is None


def test_meta_sha1_signature_alone_is_not_enough():
    sha1 = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    with pytest.raises(VerificationError, match="missing X-Hub-Signature-256 header"):
        check(inbound({"X-Hub-Signature": sha1}), options(secret=SECRET))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "missing X-Hub-Signature-256 header"),
        (KNOWN_SIGNATURE.removeprefix("sha256="), "is not sha256=<hex>"),
        ("sha1=" + KNOWN_SIGNATURE.removeprefix("sha256="), "is not sha256=<hex>"),
        ("sha256=", "signature does not match"),
        ("sha256=" + "x" * 64, "signature does not match"),
        (KNOWN_SIGNATURE + "00", "signature does not match"),
        ("sha256=\udcff", "is not sha256=<hex>"),
        ("sha256=ü" + KNOWN_SIGNATURE[8:], "is not sha256=<hex>"),
    ],
)
def test_meta_malformed_header_is_rejected(value, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound({"X-Hub-Signature-256": value}), options(secret=SECRET))


def test_meta_sign_round_trips_with_the_sample_body():
    opts = options(secret=SECRET)
    headers = sign(opts, plugin.sample_body, "", NOW)
    assert headers["X-Hub-Signature-256"] == signature(SECRET, plugin.sample_body)
    assert headers["X-Hub-Signature"].startswith("sha1=")
    assert check(inbound(headers, plugin.sample_body), opts) is None


def test_meta_has_no_delivery_id_to_dedupe_on():
    assert plugin.default_dedupe is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"verify_token": VERIFY_TOKEN}, ["sources.x.verify.secret: needs secret or secrets"]),
        (
            {"secret": SECRET},
            [
                "sources.x.verify.verify_token: is required: the Verify Token set in the App Dashboard"
            ],
        ),
        (
            {"secret": SECRET, "verify_token": ""},
            [
                "sources.x.verify.verify_token: is required: the Verify Token set in the App Dashboard"
            ],
        ),
        (
            {"secret": SECRET, "verify_token": ["a"]},
            ["sources.x.verify.verify_token: expected a string, got ['a']"],
        ),
    ],
)
def test_meta_config_problems_carry_their_key_path(config, expected):
    problems: list[str] = []
    plugin.parse(Section(config, "sources.x.verify", problems))
    assert problems == expected


TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))
HEADER_TEXT = st.one_of(TEXT, TEXT.map("sha256=".__add__))


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    headers=st.dictionaries(
        st.sampled_from(["X-Hub-Signature-256", "X-Hub-Signature", "x-other"]), HEADER_TEXT
    ),
    query=st.dictionaries(
        st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge"]),
        st.one_of(st.just("subscribe"), TEXT),
    ),
    body=st.binary(),
)
def test_meta_arbitrary_requests_are_never_accepted_and_never_crash(method, headers, query, body):
    request = Inbound(
        method,
        "https://hooks.example.com/in/meta",
        CIMultiDict(headers),
        MultiDict(query),
        body,
        NOW,
    )
    with pytest.raises(VerificationError):
        check(request, options(secret=SECRET))
