"""`hookgate send` signs as each shared-secret provider would; its own verifier agrees."""

from __future__ import annotations

import asyncio
import base64

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
