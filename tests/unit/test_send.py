"""`hookgate send` signs as each shared-secret provider would; its own verifier agrees."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from multidict import CIMultiDict
from yarl import URL

from gateway.clock import SystemClock
from gateway.errors import HookgateError
from gateway.plugin import Inbound
from gateway.plugins import load_registry
from gateway.section import Section
from gateway.send import SendRequest, signed_request

URL_ = "https://hooks.example.com/in/source"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

SHARED_SECRET_TYPES = {
    "api-key": {"secret": "k"},
    "basic": {"username": "hooks", "password": "p"},
    "bitbucket": {"secret": "s"},
    "calendly": {"secret": "s"},
    "github": {"secret": "s"},
    "gitlab": {"secret": "s"},
    "hmac": {"secret": "s", "header": "X-Signature"},
    "hubspot": {"secret": "s"},
    "intercom": {"secret": "s"},
    "linear": {"secret": "s"},
    "mailgun": {"secret": "s"},
    "meta": {"secret": "s", "verify_token": "t"},
    "mux": {"secret": "s"},
    "paddle": {"secret": "s"},
    "pagerduty": {"secret": "s"},
    "shopify": {"secret": "s"},
    "slack": {"secret": "s"},
    "square": {"secret": "s"},
    "standard-webhooks": {"secret": WHSEC},
    "stripe": {"secret": "s"},
    "svix": {"secret": WHSEC},
    "twilio": {"secret": "s"},
    "twitch": {"secret": "s"},
    "typeform": {"secret": "s"},
    "zoom": {"secret": "s"},
}
# Signed with a key only the provider holds.
NOT_SIGNABLE = {"discord", "sendgrid", "sns"}


def test_every_installed_verifier_is_covered_here():
    assert set(load_registry().names("verifier")) == set(SHARED_SECRET_TYPES) | NOT_SIGNABLE


@pytest.mark.parametrize(("kind", "config"), sorted(SHARED_SECRET_TYPES.items()))
def test_send_signs_a_sample_that_the_verifier_accepts(kind, config):
    body, headers = signed_request(SendRequest(kind, URL_, dict(config)))
    plugin = load_registry().verifier(kind)
    assert plugin is not None
    problems: list[str] = []
    verifier = plugin.create(plugin.parse(Section(dict(config), "verify", problems)), None)
    assert problems == []
    inbound = Inbound(
        "POST", URL_, CIMultiDict(headers), URL(URL_).query, body, SystemClock().now()
    )
    assert asyncio.run(verifier.verify(inbound)) is None
    assert headers["Content-Type"]


def sendgrid_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.mark.parametrize("kind", sorted(NOT_SIGNABLE - {"sns"}))
def test_send_explains_what_it_cannot_sign(kind):
    config = {
        "discord": {"public_key": "00" * 32},
        "sendgrid": {"public_key": sendgrid_key()},
    }[kind]
    with pytest.raises(HookgateError, match="cannot sign"):
        signed_request(SendRequest(kind, URL_, config))


def test_send_reports_config_problems_with_paths():
    with pytest.raises(HookgateError, match=r"verify\.secret"):
        signed_request(SendRequest("stripe", URL_, {}))


def dedupe_value(kind: str, body: bytes, headers: dict[str, str]) -> object:
    """The value of the provider's default dedupe key in a sample (None: no default key)."""
    key = getattr(load_registry().verifier(kind), "default_dedupe", None)
    if key is None:
        return None
    where, _, name = key.partition(":")
    if where == "header":
        return CIMultiDict(headers).get(name)
    value: object = json.loads(body)
    for part in name.split("."):
        assert isinstance(value, dict)
        value = value.get(part)
    return value


@pytest.mark.parametrize(("kind", "config"), sorted(SHARED_SECRET_TYPES.items()))
def test_each_sample_is_a_new_event(kind, config):
    first = signed_request(SendRequest(kind, URL_, dict(config)))
    second = signed_request(SendRequest(kind, URL_, dict(config)))
    # Without a default dedupe key a provider's requests are never duplicates of each other.
    if dedupe_value(kind, *first) is not None:
        assert dedupe_value(kind, *first) != dedupe_value(kind, *second)


@pytest.mark.parametrize(("kind", "config"), sorted(SHARED_SECRET_TYPES.items()))
def test_a_pinned_id_makes_the_same_event_twice_and_still_verifies(kind, config):
    first = signed_request(SendRequest(kind, URL_, dict(config), event_id="evt_pinned_1"))
    second = signed_request(SendRequest(kind, URL_, dict(config), event_id="evt_pinned_1"))
    assert dedupe_value(kind, *first) == dedupe_value(kind, *second)
    if dedupe_value(kind, *first) is not None:
        assert dedupe_value(kind, *first) == "evt_pinned_1"


def test_a_sample_keeps_a_numeric_id_numeric():
    body, _ = signed_request(SendRequest("shopify", URL_, {"secret": "s"}))
    assert isinstance(json.loads(body)["id"], int)


def test_a_body_given_by_the_user_is_sent_untouched():
    body, _ = signed_request(SendRequest("stripe", URL_, {"secret": "s"}, b'{"id": "mine"}'))
    assert body == b'{"id": "mine"}'


@pytest.mark.parametrize("kind", ["discord", "sendgrid"])
def test_send_says_only_the_provider_holds_the_key_before_asking_for_options(kind):
    with pytest.raises(HookgateError) as raised:
        signed_request(SendRequest(kind, URL_, {}))
    assert raised.value.message.startswith(f"{kind}: cannot sign: ")
    assert "private key that only the provider holds" in raised.value.message
