"""How each provider signs, written from its documentation, apart from the plugins' code.

A `Scheme` turns a list of secret names into the verifier's config (several: rotation)
and signs a request with one of them at a given time, as the provider would. For
asymmetric schemes a secret name stands for a key pair derived from it, so "another
secret" is another key. tests/unit/test_verifier_contract.py runs every scheme.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from verifiers import URL

BODY = b'{"id": "evt_contract_1", "type": "contract.tested", "data": {"n": 1}}'


@dataclass(frozen=True)
class Signed:
    """What the provider sends: headers, and the body when the signature is inside it."""

    headers: dict[str, str]
    body: bytes = BODY


@dataclass(frozen=True)
class Scheme:
    type: str  # the verifier's ``type:``
    config: Callable[[list[str]], dict[str, Any]]  # accepts any of these secrets
    sign: Callable[[str, bytes, dt.datetime], Signed]  # signed with one secret, at a time
    header: str | None = None  # carries the signature (None: it is in the body)
    timestamp_header: str | None = None  # carries the signed time on its own
    body: bytes = BODY
    covers_body: bool = True  # False: a shared token or password, not a signature
    timestamped: bool = False  # the provider signs a time, checked against `tolerance`
    rotates: bool = True  # several secrets may be configured at once
    fetch: Callable[[list[str]], dict[str, bytes]] = field(default=lambda secrets: {})
    variant: str = ""  # tells two schemes of one verifier apart
    tamper: Callable[[bytes], bytes] = lambda body: body + b" "  # a change the signature covers
    mismatch: str = "signature does not match"  # the reason for a wrong secret

    @property
    def label(self) -> str:
        return f"{self.type}-{self.variant}" if self.variant else self.type


def mac(secret: str, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unix(when: dt.datetime) -> str:
    return str(int(when.timestamp()))


def millis(when: dt.datetime) -> str:
    return str(int(when.timestamp() * 1000))


def secrets(key: str = "secret") -> Callable[[list[str]], dict[str, Any]]:
    return lambda names: {key: names[0]} if len(names) == 1 else {f"{key}s": names}


def whsec(name: str) -> str:
    return "whsec_" + b64(name.encode().ljust(24, b"."))


def body_hmac(kind: str, header: str, prefix: str = "", encode: Any = bytes.hex) -> Scheme:
    """A provider that sends `prefix` + the HMAC of the body alone in `header`."""
    algorithm = "sha1" if kind == "intercom" else "sha256"
    return Scheme(
        kind,
        secrets(),
        lambda s, body, when: Signed({header: prefix + encode(mac(s, body, algorithm))}),
        header,
    )


def t_v1(kind: str, header: str) -> Scheme:
    """Stripe's scheme, ``t=<unix>,v1=<hex HMAC of "t.body">``, also Calendly's and Mux's."""

    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        stamp = unix(when)
        return Signed({header: f"t={stamp},v1={mac(secret, f'{stamp}.'.encode() + body).hex()}"})

    return Scheme(kind, secrets(), sign, header, timestamped=True)


def v0(kind: str, signature: str, timestamp: str) -> Scheme:
    """Slack's and Zoom's ``v0=<hex HMAC of "v0:ts:body">`` with the time in its own header."""

    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        stamp = unix(when)
        digest = mac(secret, f"v0:{stamp}:".encode() + body).hex()
        return Signed({signature: "v0=" + digest, timestamp: stamp})

    return Scheme(kind, secrets(), sign, signature, timestamp, timestamped=True)


def standard(kind: str, prefix: str, key: str = "secret") -> Scheme:
    """Standard Webhooks v1: base64 HMAC of "id.ts.body" with a whsec_ key."""

    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        stamp, raw = unix(when), base64.b64decode(whsec(secret).removeprefix("whsec_"))
        digest = hmac.new(raw, f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
        headers = {f"{prefix}-id": "msg_1", f"{prefix}-timestamp": stamp}
        return Signed({**headers, f"{prefix}-signature": "v1," + b64(digest)})

    def config(names: list[str]) -> dict[str, Any]:
        return secrets(key)([whsec(name) for name in names])

    return Scheme(
        kind, config, sign, f"{prefix}-signature", f"{prefix}-timestamp", timestamped=True
    )


@functools.cache
def ed25519(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())


@functools.cache
def p256(name: str) -> ec.EllipticCurvePrivateKey:
    value = int.from_bytes(hashlib.sha256(name.encode()).digest()) % (2**255)
    return ec.derive_private_key(value, ec.SECP256R1())


@functools.cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def discord() -> Scheme:
    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        signature = ed25519(secret).sign(unix(when).encode() + body).hex()
        return Signed({"X-Signature-Ed25519": signature, "X-Signature-Timestamp": unix(when)})

    def config(names: list[str]) -> dict[str, Any]:
        keys = [ed25519(n).public_key().public_bytes_raw().hex() for n in names]
        return secrets("public_key")(keys)

    header, stamp = "X-Signature-Ed25519", "X-Signature-Timestamp"
    return Scheme("discord", config, sign, header, stamp, timestamped=True)


def sendgrid() -> Scheme:
    header = "X-Twilio-Email-Event-Webhook-Signature"
    stamp_header = "X-Twilio-Email-Event-Webhook-Timestamp"

    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        signature = p256(secret).sign(unix(when).encode() + body, ec.ECDSA(hashes.SHA256()))
        return Signed({header: b64(signature), stamp_header: unix(when)})

    def config(names: list[str]) -> dict[str, Any]:
        der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        return secrets("public_key")([b64(p256(n).public_key().public_bytes(*der)) for n in names])

    return Scheme("sendgrid", config, sign, header, stamp_header, timestamped=True)


def twilio() -> Scheme:
    body = b"CallSid=CA123&From=%2B14158675309&To=%2B18005551212&Digits=1234"

    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        params = "".join(k + v for k, v in sorted(parse_qsl(body.decode())))
        digest = mac(secret, (URL + params).encode(), "sha1")
        return Signed({"X-Twilio-Signature": b64(digest)}, body)

    return Scheme("twilio", secrets(), sign, "X-Twilio-Signature", body=body)


def hubspot() -> Scheme:
    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        stamp = millis(when)
        digest = mac(secret, f"POST{URL}".encode() + body + stamp.encode())
        return Signed({"X-HubSpot-Signature-v3": b64(digest), "X-HubSpot-Request-Timestamp": stamp})

    header, stamp = "X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"
    return Scheme("hubspot", secrets(), sign, header, stamp, timestamped=True)


def paddle() -> Scheme:
    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        stamp = unix(when)
        digest = mac(secret, f"{stamp}:".encode() + body).hex()
        return Signed({"Paddle-Signature": f"ts={stamp};h1={digest}"})

    return Scheme("paddle", secrets(), sign, "Paddle-Signature", timestamped=True)


def twitch() -> Scheme:
    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanoseconds, as Twitch sends
        digest = mac(secret, f"msg-1{stamp}".encode() + body).hex()
        headers = {
            "Twitch-Eventsub-Message-Id": "msg-1",
            "Twitch-Eventsub-Message-Timestamp": stamp,
        }
        headers["Twitch-Eventsub-Message-Type"] = "notification"
        return Signed({**headers, "Twitch-Eventsub-Message-Signature": "sha256=" + digest})

    header, stamp = "Twitch-Eventsub-Message-Signature", "Twitch-Eventsub-Message-Timestamp"
    return Scheme("twitch", secrets(), sign, header, stamp, timestamped=True)


def linear() -> Scheme:
    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        event = {**json.loads(body), "webhookTimestamp": int(millis(when))}
        signed = json.dumps(event).encode()
        return Signed({"Linear-Signature": mac(secret, signed).hex()}, signed)

    return Scheme("linear", secrets(), sign, "Linear-Signature", timestamped=True)


def mailgun() -> Scheme:
    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        stamp, token = unix(when), "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
        fields = {"timestamp": stamp, "token": token}
        fields["signature"] = mac(secret, (stamp + token).encode()).hex()
        event = {"signature": fields, "event-data": json.loads(body)}
        return Signed({"Content-Type": "application/json"}, json.dumps(event).encode())

    return Scheme("mailgun", secrets(), sign, covers_body=False, timestamped=True)


def hmac_generic() -> Scheme:
    shape = {"header": "X-Signature", "prefix": "sha256=", "timestamp_header": "X-Timestamp"}

    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        digest = mac(secret, unix(when).encode() + b"." + body).hex()
        return Signed({"X-Signature": "sha256=" + digest, "X-Timestamp": unix(when)})

    def config(names: list[str]) -> dict[str, Any]:
        return {**secrets()(names), **shape, "template": "{timestamp}.{body}"}

    return Scheme("hmac", config, sign, "X-Signature", "X-Timestamp", timestamped=True)


def basic() -> Scheme:
    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        return Signed({"Authorization": "Basic " + b64(f"hooks:{secret}".encode())})

    def config(names: list[str]) -> dict[str, Any]:
        return {"credentials": [{"username": "hooks", "password": name} for name in names]}

    return Scheme(
        "basic",
        config,
        sign,
        "Authorization",
        covers_body=False,
        mismatch="credentials do not match",
    )


def token(kind: str, header: str, mismatch: str, variant: str = "") -> Scheme:
    """A shared secret sent as it is in `header` (API keys, GitLab's token)."""
    return Scheme(
        kind, secrets(), lambda s, body, when: Signed({header: s}), header, covers_body=False,
        variant=variant, mismatch=mismatch,
    )  # fmt: skip


def square() -> Scheme:
    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        return Signed({"X-Square-HmacSha256-Signature": b64(mac(secret, URL.encode() + body))})

    return Scheme("square", secrets(), sign, "X-Square-HmacSha256-Signature")


def meta() -> Scheme:
    def config(names: list[str]) -> dict[str, Any]:
        return {**secrets()(names), "verify_token": "meatyhamhock"}

    scheme = body_hmac("meta", "X-Hub-Signature-256", "sha256=")
    return Scheme("meta", config, scheme.sign, scheme.header)


SNS_CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-contract.pem"
SNS_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")


@functools.cache
def sns_certificate(name: str) -> bytes:
    key, subject = rsa_key(name), x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns")])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(1).not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * 20)).sign(key, hashes.SHA256())
    )  # fmt: skip
    return certificate.public_bytes(serialization.Encoding.PEM)


def sns() -> Scheme:
    """SNS signs fields of its JSON body with the key of the certificate at SigningCertURL."""

    def sign(secret: str, body: bytes, when: dt.datetime) -> Signed:
        document = {
            "Type": "Notification", "MessageId": "m-1", "Subject": "contract",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:orders", "Message": body.decode(),
            "Timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }  # fmt: skip
        text = "".join(f"{k}\n{document[k]}\n" for k in SNS_FIELDS).encode()
        signature = rsa_key(secret).sign(text, padding.PKCS1v15(), hashes.SHA256())
        document.update(SignatureVersion="2", SigningCertURL=SNS_CERT_URL, Signature=b64(signature))
        return Signed({"x-amz-sns-message-type": "Notification"}, json.dumps(document).encode())

    def fetch(names: list[str]) -> dict[str, bytes]:
        return {SNS_CERT_URL: sns_certificate(names[0])}  # what Amazon serves there

    return Scheme(
        "sns", lambda names: {}, sign, covers_body=True, timestamped=True, rotates=False,
        fetch=fetch, tamper=lambda body: body.replace(b'"m-1"', b'"m-2"'),
    )  # fmt: skip


SCHEMES = [
    t_v1("stripe", "Stripe-Signature"),
    t_v1("calendly", "Calendly-Webhook-Signature"),
    t_v1("mux", "Mux-Signature"),
    body_hmac("github", "X-Hub-Signature-256", "sha256="),
    body_hmac("bitbucket", "X-Hub-Signature", "sha256="),
    body_hmac("intercom", "X-Hub-Signature", "sha1="),
    body_hmac("pagerduty", "X-PagerDuty-Signature", "v1="),
    body_hmac("shopify", "X-Shopify-Hmac-Sha256", encode=b64),
    body_hmac("typeform", "Typeform-Signature", "sha256=", encode=b64),
    meta(),
    v0("slack", "X-Slack-Signature", "X-Slack-Request-Timestamp"),
    v0("zoom", "x-zm-signature", "x-zm-request-timestamp"),
    standard("standard-webhooks", "webhook"),
    standard("svix", "svix"),
    standard("gitlab", "webhook", key="signing_token"),
    token("gitlab", "X-Gitlab-Token", "X-Gitlab-Token does not match", variant="token"),
    token("api-key", "X-API-Key", "API key does not match"),
    basic(),
    discord(),
    sendgrid(),
    twilio(),
    square(),
    hubspot(),
    paddle(),
    twitch(),
    linear(),
    mailgun(),
    hmac_generic(),
    sns(),
]
