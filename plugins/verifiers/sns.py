"""Amazon SNS (HTTP/S subscriptions): an RSA signature inside the JSON body over selected
fields ("Key\\nValue\\n" each), SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA, made
with the key of the certificate SNS serves at ``SigningCertURL``.

The certificate is fetched only over https from an ``sns.<region>.amazonaws.com`` host (the
trust anchor, as in AWS's own validators), then cached. Subscription and unsubscribe
confirmations are answered here and recorded, never relayed; with ``confirm: true`` the
subscription is confirmed by GETting its SubscribeURL.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from yarl import URL

from gateway.plugin import (
    Inbound,
    Reply,
    Resources,
    Section,
    VerificationError,
    VerifierPlugin,
    b64decode,
    check_timestamp,
    require,
    show,
)

Fetch = Callable[[str], Awaitable[bytes]]
"""GET a URL and return its body; any exception means the fetch failed."""

SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+")
CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": CONFIRMATION,
    "UnsubscribeConfirmation": CONFIRMATION,
}
HASHES: dict[str, type[hashes.SHA1 | hashes.SHA256]] = {"1": hashes.SHA1, "2": hashes.SHA256}
# SNS stops retrying an HTTP/S delivery within 3,600 s (a hard limit), and every retry carries
# the original Timestamp; the margin covers throttled queues and clock skew.
DEFAULT_TOLERANCE = 7200.0
TIMEOUT = 5.0  # seconds for one certificate or confirmation GET
MAX_RESPONSE = 64 * 1024
CACHE_SIZE = 64

SAMPLE_BODY = json.dumps(
    {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Subject": "My First Message",
        "Message": "Hello world!",
        "Timestamp": "2012-05-02T00:54:06.655Z",
        "SignatureVersion": "2",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-example.pem",
    },
    indent=2,
).encode()


@dataclass(frozen=True, slots=True)
class Options:
    topic_arns: frozenset[str]  # empty: any topic (an allowlist is recommended)
    confirm: bool
    tolerance: float


def parse(section: Section) -> Options:
    arns = section.text_list("topic_arns", ())
    for arn in arns:
        if not TOPIC_ARN.fullmatch(arn):
            example = "arn:aws:sns:us-east-1:123456789012:orders"
            section.fail(f"expected topic ARNs like {example}, got {show(arn)}", "topic_arns")
    confirm: bool = section.flag("confirm", False)
    tolerance: float = section.duration("tolerance", DEFAULT_TOLERANCE)
    return Options(frozenset(arns), confirm, tolerance)


@dataclass(frozen=True, slots=True)
class Message:
    """The parts of an SNS message that take part in its verification."""

    type: str
    fields: dict[str, str]  # the signed fields, in signing order
    signed: bytes
    signature: bytes
    algorithm: hashes.HashAlgorithm
    cert_url: str
    seconds: float  # Timestamp as Unix seconds


def read_message(body: bytes) -> Message:
    """The message in `body`, checked for shape before anything is fetched."""
    # SNS signs fields inside the JSON document, so it has to be parsed before verification.
    document = _document(body)
    kind = document.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_FIELDS:
        raise VerificationError("Type is not an SNS message type")
    fields = {
        key: _text(document, key)
        for key in SIGNED_FIELDS[kind]
        if key != "Subject" or document.get(key) is not None  # Subject only when present
    }
    version = _text(document, "SignatureVersion")
    require(version in HASHES, "SignatureVersion is not 1 or 2")
    return Message(
        type=kind,
        fields=fields,
        signed=_string_to_sign(fields),
        signature=b64decode(_text(document, "Signature")),
        algorithm=HASHES[version](),
        cert_url=sns_url(_text(document, "SigningCertURL"), "SigningCertURL", certificate=True),
        seconds=_seconds(fields["Timestamp"]),
    )


def _document(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body.decode(), object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise VerificationError("body is not an SNS JSON message") from None
    require(isinstance(document, dict), "body is not an SNS JSON message")
    return dict(document)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Another parser might keep the first of two duplicate keys where we keep the last.
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate key")
    return document


def _text(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str):
        raise VerificationError(f"{key} is missing or not a string")
    return value


def _string_to_sign(fields: dict[str, str]) -> bytes:
    try:
        return "".join(f"{key}\n{value}\n" for key, value in fields.items()).encode()
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        raise VerificationError("message fields are not valid Unicode") from None


def _seconds(timestamp: str) -> float:
    try:
        when = dt.datetime.fromisoformat(timestamp)
        require(when.tzinfo is not None, "malformed Timestamp")
        return when.timestamp()
    except (ValueError, OverflowError):
        raise VerificationError("malformed Timestamp") from None


def sns_url(text: str, what: str, certificate: bool) -> str:
    """`text` if it is an https URL on an SNS host (and, for a certificate, a .pem path)."""
    try:
        url = URL(text)
        ok = (
            url.scheme == "https"
            and SNS_HOST.fullmatch(url.host or "") is not None
            and url.explicit_port is None
            and url.user is None
            and url.password is None
        )
        if certificate:
            ok = ok and url.path.endswith(".pem") and not url.query_string and not url.fragment
    except (ValueError, TypeError):
        raise VerificationError(f"{what} is not a URL") from None
    where = "an https URL on an sns.<region>.amazonaws.com host"
    require(ok, f"{what} is not {where}" + (" ending in .pem" if certificate else ""))
    return str(url)


@dataclass(frozen=True, slots=True)
class Signer:
    """The public key of a signing certificate and when the certificate is valid."""

    key: rsa.RSAPublicKey
    not_before: float
    not_after: float

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        try:
            certificate = x509.load_pem_x509_certificate(pem)
            key = certificate.public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise VerificationError("signing certificate is not a PEM certificate") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise VerificationError("signing certificate does not hold an RSA key")
        return cls(
            key,
            certificate.not_valid_before_utc.timestamp(),
            certificate.not_valid_after_utc.timestamp(),
        )

    def check(self, message: Message) -> None:
        valid = self.not_before <= message.seconds <= self.not_after
        require(valid, "signing certificate was not valid at the message's Timestamp")
        try:
            self.key.verify(
                message.signature, message.signed, padding.PKCS1v15(), message.algorithm
            )
        except (InvalidSignature, ValueError, UnsupportedAlgorithm):
            raise VerificationError("signature does not match") from None


class SnsVerifier:
    """Verifies SNS messages; certificates come through `fetch`, confirmations go through
    `confirm` (both GET a URL already checked to be on an SNS host)."""

    def __init__(
        self, options: Options, fetch: Fetch, confirm: Fetch, cache_size: int = CACHE_SIZE
    ) -> None:
        self._options = options
        self._fetch = fetch
        self._confirm = confirm
        self._cache_size = cache_size
        self._signers: OrderedDict[str, Signer] = OrderedDict()

    async def verify(self, inbound: Inbound) -> Reply | None:
        message = read_message(inbound.body)
        self._check_envelope(message, inbound)
        (await self._signer(message.cert_url)).check(message)
        if message.type == "Notification":
            return None
        return await self._answer(message)

    def sign(self, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
        raise NotImplementedError("SNS signs with Amazon's private key; hookgate has no copy")

    def _check_envelope(self, message: Message, inbound: Inbound) -> None:
        allowed = self._options.topic_arns
        require(not allowed or message.fields["TopicArn"] in allowed, "TopicArn is not allowed")
        declared = inbound.headers.get("x-amz-sns-message-type")
        require(declared in (None, message.type), "x-amz-sns-message-type does not match Type")
        check_timestamp(message.seconds, inbound.now, self._options.tolerance)

    async def _signer(self, url: str) -> Signer:
        signer = self._signers.get(url)
        if signer is not None:
            self._signers.move_to_end(url)
            return signer
        try:
            pem = await self._fetch(url)
        except Exception as exc:  # whatever went wrong, this request is not verified
            raise VerificationError("cannot fetch signing certificate") from exc
        signer = Signer.from_pem(pem)
        self._signers[url] = signer
        if len(self._signers) > self._cache_size:
            self._signers.popitem(last=False)
        return signer

    async def _answer(self, message: Message) -> Reply:
        if message.type != "SubscriptionConfirmation" or not self._options.confirm:
            return Reply(b'{"subscription": "recorded"}')
        url = sns_url(message.fields["SubscribeURL"], "SubscribeURL", certificate=False)
        try:
            await self._confirm(url)
        except Exception as exc:  # reported as the reason this confirmation was refused
            raise VerificationError("cannot confirm subscription") from exc
        return Reply(b'{"subscription": "confirmed"}')


def http_get(resources: Resources) -> Fetch:
    """GET through hookgate's client: a short timeout, no redirects (they could leave the
    SNS host), a capped body."""

    async def get(url: str) -> bytes:
        return await resources.fetch(url, seconds=TIMEOUT, max_bytes=MAX_RESPONSE)

    return get


async def _offline(url: str) -> bytes:
    raise VerificationError("no HTTP client to fetch with")


class Plugin:
    """The ``sns`` verifier: asynchronous, as it may fetch a certificate."""

    kind: Literal["verifier"] = "verifier"
    name = "sns"
    default_dedupe: str | None = "json:MessageId"
    sample_body = SAMPLE_BODY
    sample_content_type = "text/plain; charset=UTF-8"  # what SNS sends by default

    def parse(self, section: Section) -> Options:
        return parse(section)

    def create(self, options: Options, resources: Resources | None) -> SnsVerifier:
        if resources is None:  # `hookgate send`: nothing will be verified
            return SnsVerifier(options, _offline, _offline)
        get = http_get(resources)
        return SnsVerifier(options, get, get)


plugin: VerifierPlugin = Plugin()
