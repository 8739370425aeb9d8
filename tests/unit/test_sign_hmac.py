"""The hmac signer: what it sends, the inbound hmac verifier accepts with the same settings."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid

import pytest
from multidict import CIMultiDict

from gateway.config import parse_config
from gateway.errors import ConfigError, VerificationError
from gateway.plugin import Headers, Inbound, Message, Outcome, Section, SendResult
from plugins.signers.hmac import plugin
from plugins.verifiers import hmac as verifier

PATH = "targets.t.sign"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
DELIVERY = uuid.UUID("0193b2c4-7f5e-7a9b-8c1d-2e3f4a5b6c7d")
BODY = b'{"type": "invoice.paid", "amount": 1200}'
OUTGOING: Headers = (
    ("Content-Type", "application/json"),
    ("X-Hookgate-Delivery-Id", str(DELIVERY)),
    ("Idempotency-Key", str(DELIVERY)),
)
TEMPLATED = {
    "secret": "s3cret",
    "header": "X-Signature",
    "prefix": "sha256=",
    "template": "{id}.{timestamp}.{body}",
    "timestamp_header": "X-Timestamp",
    "id_header": "X-Webhook-Id",
}


class Recorder:
    """Stands in for the next middleware: keeps what it was given, answers 2xx."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> SendResult:
        self.messages.append(message)
        return SendResult(Outcome.HTTP_2XX, status=200)


def parsed(parse, config):
    problems: list[str] = []
    options = parse(Section(config, PATH, problems))
    assert problems == []
    return options


def problems_for(config):
    problems: list[str] = []
    plugin.parse(Section({"type": "hmac", **config}, PATH, problems))
    return problems


def message(body=BODY, headers=OUTGOING, attempt=1, now=NOW) -> Message:
    return Message(
        event_id=uuid.uuid4(),
        delivery_id=DELIVERY,
        attempt=attempt,
        source="billing",
        target="t",
        event_type="invoice.paid",
        received_at=NOW,
        now=now,
        body=body,
        headers=headers,
    )


async def signed(config, outgoing: Message | None = None) -> Message:
    """The message as the signer hands it on."""
    options = parsed(plugin.parse, {"type": "hmac", **config})
    signer = plugin.create(options, None)  # the signer uses no resources
    recorder = Recorder()
    result = await signer(outgoing or message(), recorder)
    assert result.outcome is Outcome.HTTP_2XX
    [sent] = recorder.messages
    return sent


def verify(config, sent: Message, body: bytes | None = None) -> None:
    """Check `sent` as a receiver configured with `config` would; raises if it is refused."""
    options = parsed(verifier.parse, config)
    inbound = Inbound(
        "POST",
        "https://receiver.example/hooks",
        CIMultiDict(sent.headers),
        {},
        sent.body if body is None else body,
        sent.now,
    )
    assert verifier.check(inbound, options) is None


def values(sent: Message, name: str) -> list[str]:
    return [value for key, value in sent.headers if key.lower() == name.lower()]


# --- what is sent verifies -------------------------------------------------------------------


async def test_hmac_signer_default_config_signs_the_body_in_one_hex_header():
    config = {"secret": "s3cret", "header": "X-Sig"}
    sent = await signed(config)
    verify(config, sent)
    assert values(sent, "X-Sig") == [hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()]
    assert sent.body == BODY
    assert sent.headers[: len(OUTGOING)] == OUTGOING  # the rest are kept, in order


async def test_hmac_signer_base64_with_prefix_and_sha512_verifies():
    config = {
        "secret": "s3cret",
        "header": "X-Sig",
        "algorithm": "sha512",
        "encoding": "base64",
        "prefix": "v1=",
    }
    sent = await signed(config)
    verify(config, sent)
    digest = hmac.new(b"s3cret", BODY, hashlib.sha512).digest()
    assert values(sent, "X-Sig") == ["v1=" + base64.b64encode(digest).decode()]


async def test_hmac_signer_template_signs_the_attempt_time_and_the_delivery_id():
    sent = await signed(TEMPLATED)
    verify(TEMPLATED, sent)
    stamp = str(int(NOW.timestamp()))
    assert values(sent, "X-Timestamp") == [stamp]
    assert values(sent, "X-Webhook-Id") == [str(DELIVERY)]
    signed_string = f"{DELIVERY}.{stamp}.".encode() + BODY
    expected = hmac.new(b"s3cret", signed_string, hashlib.sha256).hexdigest()
    assert values(sent, "X-Signature") == ["sha256=" + expected]


async def test_hmac_signer_tampered_body_fails_verification():
    sent = await signed(TEMPLATED)
    with pytest.raises(VerificationError, match="signature does not match"):
        verify(TEMPLATED, sent, body=BODY.replace(b"1200", b"9999"))


async def test_hmac_signer_signs_the_body_it_is_given():
    # sign is the innermost middleware: what it gets is what a transform made of the body.
    sent = await signed(TEMPLATED, message(body=b"transformed"))
    verify(TEMPLATED, sent, body=b"transformed")
    with pytest.raises(VerificationError, match="signature does not match"):
        verify(TEMPLATED, sent, body=BODY)


async def test_hmac_signer_id_header_is_the_delivery_id_on_every_attempt():
    later = NOW + dt.timedelta(minutes=5)
    first = await signed(TEMPLATED, message(attempt=1, now=NOW))
    second = await signed(TEMPLATED, message(attempt=2, now=later))
    assert values(first, "X-Webhook-Id") == values(second, "X-Webhook-Id") == [str(DELIVERY)]
    assert values(second, "X-Timestamp") == [str(int(later.timestamp()))]
    verify(TEMPLATED, first)
    verify(TEMPLATED, second)


async def test_hmac_signer_replaces_headers_of_the_same_names():
    forwarded: Headers = (
        *OUTGOING,
        ("x-signature", "sha256=forged"),
        ("X-SIGNATURE", "sha256=forged-again"),
        ("x-timestamp", "1"),
        ("X-Webhook-ID", "evt_from_the_provider"),
    )
    sent = await signed(TEMPLATED, message(headers=forwarded))
    assert len(values(sent, "X-Signature")) == 1
    assert values(sent, "X-Timestamp") == [str(int(NOW.timestamp()))]
    assert values(sent, "X-Webhook-Id") == [str(DELIVERY)]
    verify(TEMPLATED, sent)


async def test_hmac_signer_with_several_secrets_signs_with_the_first():
    sent = await signed({**TEMPLATED, "secret": None, "secrets": ["new", "old"]})
    verify({**TEMPLATED, "secret": "new"}, sent)
    with pytest.raises(VerificationError, match="signature does not match"):
        verify({**TEMPLATED, "secret": "old"}, sent)


async def test_hmac_signer_id_header_may_be_the_idempotency_key():
    config = {**TEMPLATED, "id_header": "Idempotency-Key"}
    sent = await signed(config)
    assert values(sent, "Idempotency-Key") == [str(DELIVERY)]
    verify(config, sent)


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"secret": "s"}, f"{PATH}.header: is required"),
        ({"header": "X-Sig"}, f"{PATH}.secret: needs secret or secrets"),
        ({"secret": "s", "header": "X Sig"}, f'{PATH}.header: expected a header name, got "X Sig"'),
        ({"secret": "s", "header": "X-Sig", "algorithm": "md5"}, f'{PATH}.algorithm: expected one of sha1, sha256, sha512, got "md5"'),
        ({"secret": "s", "header": "X-Sig", "encoding": "base32"}, f'{PATH}.encoding: expected one of hex, base64, got "base32"'),
        ({"secret": "s", "header": "X-Sig", "template": "v0:"}, f"{PATH}.template: must contain {{body}}, or the signature would not cover the body"),
        ({"secret": "s", "header": "X-Sig", "template": "{nonce}.{body}"}, f"{PATH}.template: unknown placeholder {{nonce}} (known: {{body}}, {{timestamp}}, {{id}})"),
        ({"secret": "s", "header": "X-Sig", "template": "{id}.{body}"}, f"{PATH}.id_header: is required when the template uses {{id}}"),
        ({"secret": "s", "header": "X-Sig", "timestamp_header": "X-Ts"}, f"{PATH}.timestamp_header: is set but the template does not sign {{timestamp}}"),
        ({"secret": "s", "header": "X-Sig", "sceret": "s"}, f'{PATH}.sceret: unknown key (did you mean "secrets"?)'),
        ({"secret": "s", "header": "X-Sig", "tolerance": "5m"}, f"{PATH}.tolerance: only applies when verifying; the receiver sets it"),
        ({"secret": "s", "header": "Content-Length"}, f"{PATH}.header: is managed by the HTTP client and cannot be set"),
        ({"secret": "s", "header": "Idempotency-Key"}, f"{PATH}.header: is one of hookgate's identity headers and cannot be changed"),
        ({**TEMPLATED, "timestamp_header": "X-Hookgate-Attempt"}, f"{PATH}.timestamp_header: is one of hookgate's identity headers and cannot be changed"),
        ({**TEMPLATED, "id_header": "x-signature"}, f"{PATH}.id_header: is the same header as header"),
    ],
)  # fmt: skip
def test_hmac_signer_config_problems_name_the_key_path(config, problem):
    assert problems_for(config) == [problem]


def test_hmac_signer_config_reports_every_problem_at_once():
    assert problems_for({"algorithm": "md5", "typo": 1}) == [
        f"{PATH}.secret: needs secret or secrets",
        f"{PATH}.header: is required",
        f'{PATH}.algorithm: expected one of sha1, sha256, sha512, got "md5"',
        f"{PATH}.typo: unknown key",
    ]


def test_hmac_signer_is_loaded_through_the_config():
    config = parse_config(
        "targets: {t: {url: 'http://x', sign: {type: hmac, secret: s, header: X-Sig}}}", env={}
    )
    [spec] = config.targets["t"].middleware
    assert spec.type == "hmac"
    assert spec.options.secrets == (b"s",)


def test_hmac_signer_is_the_innermost_middleware_of_a_configured_target():
    config = parse_config(
        "targets: {t: {url: 'http://x', sign: {type: hmac, secret: s, header: X-Sig},"
        " middleware: [{type: headers, add: {X-Team: a}}]}}",
        env={},
    )
    target = config.targets["t"]
    assert [spec.type for spec in target.middleware] == ["headers", "hmac"]
    assert target.middleware[-1].options.header == "X-Sig"


def test_hmac_signer_config_errors_come_through_the_loader():
    with pytest.raises(ConfigError) as caught:
        parse_config("targets: {t: {url: 'http://x', sign: {type: hmac, secret: s}}}", env={})
    assert f"{PATH}.header: is required" in caught.value.problems
