"""Shopify: base64 HMAC-SHA256 of the body in X-Shopify-Hmac-Sha256."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Section, VerificationError
from plugins.verifiers.shopify import check, plugin, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
SECRET = "hush"
BODY = b'{"id":820982911946154508,"email":"jon@example.com","name":"#9999"}'
# Shopify publishes no test vector; this known answer was computed independently with
# `printf '%s' "$BODY" | openssl dgst -sha256 -hmac hush -binary | base64`.
KNOWN_SIGNATURE = "GHRA62rRonufCGcinoJEGFXXDPAEMt9WRVI1Q51xtjw="


build = Builders(plugin, body=BODY, url="https://hooks.example.com/in/shop")
options, inbound = build.options, build.inbound


def signature(secret: str, body: bytes = BODY) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@pytest.mark.parametrize(
    "name", ["X-Shopify-Hmac-Sha256", "X-Shopify-Hmac-SHA256", "x-shopify-hmac-sha256"]
)
def test_shopify_known_signature_is_accepted_under_every_header_spelling(name):
    assert check(inbound({name: KNOWN_SIGNATURE}), options(secret=SECRET)) is None


def test_shopify_signature_without_base64_padding_is_accepted():
    assert (
        check(
            inbound({"X-Shopify-Hmac-Sha256": KNOWN_SIGNATURE.rstrip("=")}), options(secret=SECRET)
        )
        is None
    )


def test_shopify_missing_header_is_rejected():
    with pytest.raises(VerificationError, match="missing X-Shopify-Hmac-Sha256 header"):
        check(inbound({"X-Shopify-Topic": "orders/create"}), options(secret=SECRET))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64!",
        "sha256=" + KNOWN_SIGNATURE,
        hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(),  # hex, not base64
        KNOWN_SIGNATURE[:-4],
        KNOWN_SIGNATURE + "AAAA",
        "é" + KNOWN_SIGNATURE,
        "\udcff" + KNOWN_SIGNATURE,  # what aiohttp's surrogateescape makes of a stray byte
        KNOWN_SIGNATURE.replace("=", "%3D"),
    ],
)
def test_shopify_malformed_header_is_rejected(value):
    with pytest.raises(VerificationError):
        check(inbound({"X-Shopify-Hmac-Sha256": value}), options(secret=SECRET))


def test_shopify_sign_round_trips_with_the_sample_body():
    opts = options(secret=SECRET)
    headers = sign(opts, plugin.sample_body, "https://hooks.example.com/in/shop", NOW)
    assert headers["X-Shopify-Hmac-Sha256"] == signature(SECRET, plugin.sample_body)
    assert headers["X-Shopify-Topic"] == "orders/create"
    assert check(inbound(headers, plugin.sample_body), opts) is None


def test_shopify_dedupes_on_the_event_id_shopify_recommends():
    assert plugin.default_dedupe == "header:X-Shopify-Webhook-Id"
    assert "X-Shopify-Webhook-Id" in sign(options(secret=SECRET), BODY, "", NOW)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "sources.x.verify.secret: needs secret or secrets"),
        ({"secrets": "not-a-list"}, None),
        ({"secrets": [1, 2]}, "sources.x.verify.secrets: expected a list of strings"),
        ({"secret": ["a"]}, "sources.x.verify.secret: expected a string"),
    ],
)
def test_shopify_config_problems_carry_their_key_path(config, problem):
    problems: list[str] = []
    plugin.parse(Section(config, "sources.x.verify", problems))
    if problem is None:
        assert problems == []
    else:
        assert problems and problems[0].startswith(problem)


HEADER_TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-Shopify-Hmac-Sha256", "X-Shopify-Hmac-SHA256", "x-other"]), HEADER_TEXT
    ),
    body=st.binary(),
)
def test_shopify_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(secret=SECRET))
