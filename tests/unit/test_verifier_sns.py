"""Amazon SNS: AWS's published messages, signatures made with a test certificate, the
certificate URL rules, the TopicArn allowlist, and the subscription handshakes."""

from __future__ import annotations

import base64
import datetime as dt
import json

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Reply, Section, VerificationError
from gateway.plugins import VerifierPlugin
from plugins.verifiers.sns import SnsVerifier, plugin

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
STAMP = "2026-11-22T11:59:30.123Z"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:orders"
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736"
)


def self_signed(key, not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), days=365 * 20) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = self_signed(KEY)

SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
SIGNED["UnsubscribeConfirmation"] = SIGNED["SubscriptionConfirmation"]


def message(kind="Notification", version="2", key=KEY, **fields):
    """A message of type `kind` signed with `key` as SNS would, with `fields` overriding."""
    document = {
        "Type": kind,
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": '{"order": 42, "note": "line one\\nline two \u00e9"}',
        "Timestamp": STAMP,
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    }
    if kind == "Notification":
        document["Subject"] = "Order placed"
    else:
        document.update(
            Token="2336412f37fb687f5d51e6e241d09c805a5a57b30d", SubscribeURL=SUBSCRIBE_URL
        )
        document["Message"] = f"You have chosen to subscribe to the topic {TOPIC}."
    document.update({k: v for k, v in fields.items() if k != "Signature"})
    document = {k: v for k, v in document.items() if v is not None}
    text = "".join(f"{k}\n{document[k]}\n" for k in SIGNED[kind] if k in document)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    document["Signature"] = fields.get("Signature", base64.b64encode(signature).decode())
    return document


class Fetcher:
    """Serves one PEM for any URL and records what was asked for."""

    def __init__(self, pem=PEM, error=None):
        self.pem, self.error, self.urls = pem, error, []

    async def __call__(self, url):
        self.urls.append(url)
        if self.error is not None:
            raise self.error
        return self.pem


build = Builders(plugin, url="https://hooks.example.com/in/sns")
options = build.options


def inbound(document, headers=None, now=NOW):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return build.inbound(headers, body, now)


def verifier(fetch=None, confirmer=None, **config):
    return SnsVerifier(options(**config), fetch or Fetcher(), confirmer or Fetcher(b"<ok/>"))


async def rejected(check, document, reason="", **kwargs):
    with pytest.raises(VerificationError, match=reason):
        await check.verify(inbound(document, **kwargs))


# --- AWS's published messages -------------------------------------------------------------

# Real SNS deliveries and the certificate they were signed with, published by AWS as fixtures
# of its official validator:
# https://github.com/aws/aws-php-sns-message-validator/blob/master/tests/FunctionalValidationsTest.php
AWS_CERT_URL = "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
AWS_CERT = b"""-----BEGIN CERTIFICATE-----
MIIF1zCCBL+gAwIBAgIQB9pYWG3Mi7xej22g9pobJTANBgkqhkiG9w0BAQsFADBG
MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRUwEwYDVQQLEwxTZXJ2ZXIg
Q0EgMUIxDzANBgNVBAMTBkFtYXpvbjAeFw0yMTA5MDcwMDAwMDBaFw0yMjA4MTcy
MzU5NTlaMBwxGjAYBgNVBAMTEXNucy5hbWF6b25hd3MuY29tMIIBIjANBgkqhkiG
9w0BAQEFAAOCAQ8AMIIBCgKCAQEAutFqueT3XgP13udzxE6UpbdjOtVO5DwoMpSM
iDNMnGzF1TYH5/R2LPUOBeTB0SkKnR4kpNcUZhicpGD4aKciz/GEZ6wu65xncfT9
H/KBOQwoXYTuClHwp6fYpGzcGFaFoEYMnijL/o4qmTSd+ukglQUgKpsDw4ofw6rU
m2CttJo+GQSNQ9NfGR1h/0J+zsApkeSYrXRx5wNlu87z8os1C/6PBrUHwt3xXeaf
Xzfwut8aRRYsS8BySOA9DAgLfNHlfdQCjKPXKrG/ussgReyWD6n/HH+j7Uha3xos
TzQqJifcxlTq6MxWdPR6fDaJNvqw6DOE7UjUNxHguXHlVfxhlQIDAQABo4IC6TCC
AuUwHwYDVR0jBBgwFoAUWaRmBlKge5WSPKOUByeWdFv5PdAwHQYDVR0OBBYEFAqz
C+vyouneE7mWWLbi9i0UsWUbMBwGA1UdEQQVMBOCEXNucy5hbWF6b25hd3MuY29t
MA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIw
OwYDVR0fBDQwMjAwoC6gLIYqaHR0cDovL2NybC5zY2ExYi5hbWF6b250cnVzdC5j
b20vc2NhMWIuY3JsMBMGA1UdIAQMMAowCAYGZ4EMAQIBMHUGCCsGAQUFBwEBBGkw
ZzAtBggrBgEFBQcwAYYhaHR0cDovL29jc3Auc2NhMWIuYW1hem9udHJ1c3QuY29t
MDYGCCsGAQUFBzAChipodHRwOi8vY3J0LnNjYTFiLmFtYXpvbnRydXN0LmNvbS9z
Y2ExYi5jcnQwDAYDVR0TAQH/BAIwADCCAX0GCisGAQQB1nkCBAIEggFtBIIBaQFn
AHYAKXm+8J45OSHwVnOfY6V35b5XfZxgCvj5TV0mXCVdx4QAAAF7vfDVkQAABAMA
RzBFAiEA2XfHuy36aqRFiaL8c3md2mH451go8707+fRE0pEdSRACIE/g5FXTUXUZ
PFcmOhm9TZ+uMY1i4CIQ/CKVWln6C3t+AHYAUaOw9f0BeZxWbbg3eI8MpHrMGyfL
956IQpoN/tSLBeUAAAF7vfDVjAAABAMARzBFAiBF1MhhFP0+FQt3daDFfMYoWwnr
muTInrjNpwfzlvQBugIhAPYadFzr+LaxSJoiZEbEHBvTts7bT0M3eCQONA2O7w6n
AHUAQcjKsd8iRkoQxqE6CUKHXk4xixsD6+tLx2jwkGKWBvYAAAF7vfDVdAAABAMA
RjBEAiAtPapmFAuA71ih4NoSd5hJelzAltNQpxDMcDfDyHyU8gIgWxmaa6+2KbBu
9xdv379zvnJACFR7jc+4asl08Dn4aagwDQYJKoZIhvcNAQELBQADggEBAA54QX0u
oFWXfMmv02CGZv4NWo5TapyeeixQ2kKpZHRdVZjxZrw+hoF6HD7P3kGjH8ztyJll
tDxB0qgMltbPhQdScwhA6iTgoaBYqEUC/VHKd4PmmPT6yIsM36NBZVmkGlzl5uNo
/dBgBaG0SsVJnhr5zro3c2quC7n6fVGEZhf/UgQwRnnvThnvbNKguglDMq4uEqv8
njKyleht+glkcmXO0m9qLKt6BOS0amy6U2GlAwRn0Wx02ndJtnRCSC6kPuRWK/SQ
FEjB7gCK4hdKaAOuWdZpI55vF6ifOeM8toC3g7ofO8qLTnJupAG+ZitY5J3cvHWr
HqOUdKigPDHYLRo=
-----END CERTIFICATE-----
"""
AWS_MESSAGES = [
    ("792cda85-518f-5dd3-9163-81d851212f3a", "892f85fe-4836-424d-8188-ab85bef0f362", None, "2022-07-28T21:23:58.317Z", "1",
     "ghtf+deOBAzHJJZ6s6CdRLfTQAlcGzq9naoFM1wi0CJiq//uVRuZnamrkWNF0fhouMFvuLVRwcz8PZLUMSfnmd5VpdTKpTyiKmy1qJAZXma0w+yi7G+I33hD1Jyk1Nbym2n0kqp3fVu2aoooiN2ZeLAT2bH0/BtjLSfN1yAOKNoprco4qV9gGUZinXJdj9a1YdNhDR2jKi33ldlsVtEXAtiaDklGEk7DgRKX38GerBPiLg3FdtgY6KC7cdeGpU/dGK+4hjc83Ive1HoFkAwqhpgInM2sMytBosoiXfCmOKmU4xeGD0gHDNZTlJUJQDlzw8Eag0H9f/5zXF9d3uy0YQ=="),
    ("17dea24b-55c2-540b-8362-f916557af765", "62674b1d-4295-426b-88e7-5fb75652a04e", None, "2022-07-28T21:24:08.324Z", "2",
     "CXVqp9PfZAL+4JHS3Zxo1PFbQsvnOjvmYhtIf17TWpwc+iIVas8kZ8GopuzVzVMdatE7rCl/O4P91Zp05Dwz8lk8dLhfp8gSu3Njlzxlyrmzo9x3va3Jb7zFnedgS2GKnZWHGBdwTXho+TosNUE+3e10OMSlwN5XGDwX7+R3WL+rn+AXmFAqp3alg27sYa55h1dLE9cGszGPjScPdtF3BmZsUDMx9wSdNKsCk+vSvE8yBjnCmUl7laSFj3LzPVrlSwgNYCF3kYnNAkah7NplK4SFhJYLwS0HCVCQJKa8rVbQLf9cBTu60U402mrgy0bN8xWoyimzbYbrOMJjalqkUg=="),
    ("11405cc3-9ac7-56d5-b45d-079e8f7a8edf", "6e11fed2-fcdf-4c52-9dc4-36ef43f37f84", "Hello world", "2022-07-28T22:53:49.654Z", "1",
     "AItkS26d8yvnIKJevdirIPW7eM/yKbZy3/CF2EreCHmXWB3etWaV5Fb7SYpGABMpugpDZzNyGY1wCVWaopDoQ+7Q/kI2TpDu8bw1eExbi8U3kduvc/2m2fIrI4gDEY8/v3nzoLcr8pPodqMzrX6SzQou4klfaqbNK+rFmH0LVf2Q1VyOROODoSXmo4jg2Yu12jfxccBl96Drr/ihq4MJ4OcrWh6UzXXlVYjJHx2Ui4anNwNEb+Z4C2CAF1DjQUbhDtaoajDBPY+4d9C1OwbqwQpXsd6tyVcI9nFyEsVK8lfnAV+/3GZQcdXHbIUYBRGcBa4X5TlWJku5nDH2ERtHHw=="),
    ("4504e649-d933-5aa9-8199-bd14ccf05f0b", "530b26da-0687-4fe4-9f71-780bad3181e2", "Hello world", "2022-07-28T22:53:55.086Z", "2",
     "cETcSvmmkt+My05qCLKexyl0+RyG83mSryKPqTfS+tYcxDJWVcjPJAr+qdpElzVaBl1aTGYVWMY64i9JqZ/JES8pylNj8LGvdhuNQKO59/WCoIimZAsNhn0xEgOeeDU+W/0BU4sdpCGMNjo0S/FuIiWaRe4E0YWRVrxeQevaQ70euDdfWgd5v1eCKQz8b367b9XBmMztL/CWUFI6YaKK/MV21eyvJe3Y7CtVYiOKEYiAZnAEkynK7gUGO5TsgDjGNYhj6U3xYsWgI03bmioSl7kdFSUj+AZ7ugas5fghqxgoDsdfqsjMYKRm5KKHQWsgzI619yIzpNKUiSMHxdZXpQ=="),
]  # fmt: skip


def aws_message(message_id, topic, subject, timestamp, version, signature):
    document = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": f"arn:aws:sns:us-east-2:295079676684:publish-and-verify-{topic}",
        "Message": "Hello world",
        "Timestamp": timestamp,
        "SignatureVersion": version,
        "Signature": signature,
        "SigningCertURL": AWS_CERT_URL,
    }
    if subject is not None:
        document["Subject"] = subject
    return document, dt.datetime.fromisoformat(timestamp) + dt.timedelta(seconds=20)


@pytest.mark.parametrize("vector", AWS_MESSAGES, ids=["v1", "v2", "v1-subject", "v2-subject"])
async def test_sns_published_aws_messages_are_accepted(vector):
    document, now = aws_message(*vector)
    fetch = Fetcher(AWS_CERT)
    assert await verifier(fetch).verify(inbound(document, now=now)) is None
    assert fetch.urls == [AWS_CERT_URL]


@pytest.mark.parametrize("vector", AWS_MESSAGES, ids=["v1", "v2", "v1-subject", "v2-subject"])
async def test_sns_published_aws_messages_with_another_message_are_rejected(vector):
    document, now = aws_message(*vector)
    document["Message"] = "Hello world!"
    await rejected(verifier(Fetcher(AWS_CERT)), document, "signature does not match", now=now)


# --- signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", ["Order placed", None])
async def test_sns_notification_signed_with_v1_or_v2_is_accepted(version, subject):
    fetch = Fetcher()
    document = message(version=version, Subject=subject)
    assert await verifier(fetch).verify(inbound(document)) is None
    assert fetch.urls == [CERT_URL]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", '{"order": 43}'),
        ("Subject", "Order cancelled"),
        ("Subject", None),
        ("MessageId", "00000000-0000-0000-0000-000000000000"),
        ("TopicArn", "arn:aws:sns:eu-west-1:123456789012:refunds"),
        ("Timestamp", "2026-11-22T11:59:31.123Z"),
    ],
)
async def test_sns_tampered_field_is_rejected(field, value):
    document = message()
    if value is None:
        del document[field]
    else:
        document[field] = value
    await rejected(verifier(), document, "signature does not match")


async def test_sns_added_subject_is_rejected():
    document = message(Subject=None)
    document["Subject"] = "Injected"
    await rejected(verifier(), document, "signature does not match")


async def test_sns_signature_by_another_key_is_rejected():
    await rejected(verifier(), message(key=OTHER_KEY), "signature does not match")


@pytest.mark.parametrize(("signed", "claimed"), [("1", "2"), ("2", "1")])
async def test_sns_signature_version_must_match_the_hash_used(signed, claimed):
    document = message(version=signed)
    document["SignatureVersion"] = claimed
    await rejected(verifier(), document, "signature does not match")


async def test_sns_notification_signed_as_a_confirmation_is_rejected():
    document = message("SubscriptionConfirmation")
    document["Type"] = "Notification"
    await rejected(verifier(), document, "signature does not match")


# --- certificate URL -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://evil.example.com/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example.com/SimpleNotificationService-1.pem",
        "https://my-bucket.s3.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.amazonaws.com/SimpleNotificationService-1.pem",
        "https://evilsns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.txt",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem?x=1",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem#x",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://user@sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://evil.example.com\\@sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://evil.example.com/x?https://sns.eu-west-1.amazonaws.com/a.pem",
        "file:///etc/ssl/cert.pem",
        "sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "",
    ],
)
async def test_sns_certificate_url_off_an_sns_https_host_is_rejected_without_fetching(url):
    fetch = Fetcher()
    await rejected(verifier(fetch), message(SigningCertURL=url), "SigningCertURL")
    assert fetch.urls == []


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
        "https://SNS.EU-WEST-1.amazonaws.com/SimpleNotificationService-1.pem",
    ],
)
async def test_sns_certificate_urls_in_every_partition_are_fetched(url):
    fetch = Fetcher()
    assert await verifier(fetch).verify(inbound(message(SigningCertURL=url))) is None
    assert len(fetch.urls) == 1


@pytest.mark.parametrize(
    ("fetch", "reason"),
    [
        (
            Fetcher(error=aiohttp.ClientConnectionError("refused")),
            "cannot fetch signing certificate",
        ),
        (Fetcher(error=TimeoutError()), "cannot fetch signing certificate"),
        (Fetcher(error=VerificationError("answered 404")), "cannot fetch signing certificate"),
        (Fetcher(b"<html>not found</html>"), "not a PEM certificate"),
        (
            Fetcher(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            "not a PEM certificate",
        ),
        (Fetcher(self_signed(ec.generate_private_key(ec.SECP256R1()))), "does not hold an RSA key"),
        (
            Fetcher(self_signed(KEY, dt.datetime(2027, 1, 1, tzinfo=dt.UTC))),
            "not valid at the message's Timestamp",
        ),
        (
            Fetcher(self_signed(KEY, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), days=30)),
            "not valid at the message's Timestamp",
        ),
    ],
)
async def test_sns_unusable_certificate_is_a_verification_error(fetch, reason):
    await rejected(verifier(fetch), message(), reason)


async def test_sns_certificate_is_fetched_once_and_cached():
    fetch = Fetcher()
    check = verifier(fetch)
    for n in range(3):
        assert await check.verify(inbound(message(MessageId=f"id-{n}"))) is None
    assert fetch.urls == [CERT_URL]


async def test_sns_certificate_cache_is_bounded_least_recently_used_first():
    fetch = Fetcher()
    check = SnsVerifier(options(), fetch, Fetcher(), cache_size=2)
    urls = [CERT_URL.replace(".pem", f"-{n}.pem") for n in range(3)]
    for url in [*urls, urls[2], urls[0]]:
        assert await check.verify(inbound(message(SigningCertURL=url))) is None
    assert fetch.urls == [*urls, urls[0]]


async def test_sns_failed_fetch_is_not_cached():
    fetch = Fetcher(error=OSError("down"))
    check = verifier(fetch)
    await rejected(check, message(), "cannot fetch")
    fetch.error = None
    assert await check.verify(inbound(message())) is None
    assert len(fetch.urls) == 2


# --- topics, timestamps, envelope ----------------------------------------------------------


async def test_sns_topic_not_in_the_allowlist_is_rejected_without_fetching():
    fetch = Fetcher()
    check = verifier(fetch, topic_arns=["arn:aws:sns:eu-west-1:123456789012:refunds"])
    await rejected(check, message(), "TopicArn is not allowed")
    assert fetch.urls == []


async def test_sns_topic_in_the_allowlist_is_accepted():
    check = verifier(topic_arns=["arn:aws:sns:eu-west-1:123456789012:refunds", TOPIC])
    assert await check.verify(inbound(message())) is None


@pytest.mark.parametrize("offset", [-300, 300])
async def test_sns_timestamp_at_the_tolerance_edge_is_accepted(offset):
    stamp = (NOW + dt.timedelta(seconds=offset)).isoformat()
    assert await verifier(tolerance="5m").verify(inbound(message(Timestamp=stamp))) is None


async def test_sns_default_tolerance_outlasts_the_longest_retry_policy():
    stamp = (NOW - dt.timedelta(hours=1, minutes=30)).isoformat()
    assert await verifier().verify(inbound(message(Timestamp=stamp))) is None
    stamp = (NOW - dt.timedelta(hours=2, seconds=1)).isoformat()
    await rejected(verifier(), message(Timestamp=stamp), "timestamp too old")


async def test_sns_message_type_header_must_agree_with_the_body():
    check = verifier()
    headers = {"x-amz-sns-message-type": "Notification"}
    assert await check.verify(inbound(message(), headers=headers)) is None
    headers = {"x-amz-sns-message-type": "SubscriptionConfirmation"}
    await rejected(check, message(), "does not match Type", headers=headers)


# --- malformed messages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not an SNS JSON message"),
        (b"Type=Notification", "not an SNS JSON message"),
        (b"[1, 2]", "not an SNS JSON message"),
        (b'"Notification"', "not an SNS JSON message"),
        (b"\xff\xfe{}", "not an SNS JSON message"),
        (b"[" * 100_000 + b"]" * 100_000, "not an SNS JSON message"),
        (b'{"Type": "Notification", "Type": "Notification"}', "not an SNS JSON message"),
        (b"{}", "Type is not an SNS message type"),
        (b'{"Type": ["Notification"]}', "Type is not an SNS message type"),
        (b'{"Type": "notification"}', "Type is not an SNS message type"),
    ],
)
async def test_sns_body_that_is_not_an_sns_message_is_rejected(body, reason):
    await rejected(verifier(), body, reason)


@pytest.mark.parametrize(
    "field",
    [
        "Message",
        "MessageId",
        "Timestamp",
        "TopicArn",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    ],
)
@pytest.mark.parametrize("value", [None, 1, ["x"], {"x": 1}])
async def test_sns_missing_or_non_string_field_is_rejected(field, value):
    document = message()
    document[field] = value
    await rejected(verifier(), document, f"{field} is missing or not a string")


@pytest.mark.parametrize("field", ["Token", "SubscribeURL"])
async def test_sns_confirmation_without_its_token_or_url_is_rejected(field):
    document = message("SubscriptionConfirmation")
    del document[field]
    await rejected(verifier(), document, f"{field} is missing")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"SignatureVersion": "3"}, "SignatureVersion is not 1 or 2"),
        ({"SignatureVersion": ""}, "SignatureVersion is not 1 or 2"),
        ({"Signature": "not base64!"}, "malformed base64"),
        ({"Signature": ""}, "signature does not match"),
        ({"Signature": "AAAA"}, "signature does not match"),
        ({"Signature": base64.b64encode(b"\x00" * 600).decode()}, "signature does not match"),
        ({"Timestamp": "yesterday"}, "malformed Timestamp"),
        ({"Timestamp": "2026-11-22T11:59:30"}, "malformed Timestamp"),
        ({"Timestamp": "0001-01-01T00:00:00+05:00"}, "malformed Timestamp|timestamp"),
        ({"Timestamp": "9999-12-31T23:59:59-05:00"}, "malformed Timestamp|timestamp"),
        ({"Message": "\ud800"}, "not valid Unicode"),
        ({"SigningCertURL": "https://sns.\ud800.amazonaws.com/a.pem"}, "SigningCertURL"),
        ({"SigningCertURL": "https://[::1/a.pem"}, "SigningCertURL is not a URL"),
    ],
)
async def test_sns_malformed_field_is_rejected(fields, reason):
    document = message()
    document.update(fields)
    await rejected(verifier(), document, reason)


# --- handshakes ----------------------------------------------------------------------------


async def test_sns_subscription_confirmation_is_recorded_and_not_confirmed_by_default():
    confirm = Fetcher(b"<ConfirmSubscriptionResponse/>")
    reply = await verifier(confirmer=confirm).verify(inbound(message("SubscriptionConfirmation")))
    assert reply == Reply(b'{"subscription": "recorded"}', "application/json", 200)
    assert confirm.urls == []


async def test_sns_subscription_confirmation_with_confirm_true_gets_the_subscribe_url_once():
    confirm = Fetcher(b"<ConfirmSubscriptionResponse/>")
    check = verifier(confirmer=confirm, confirm=True)
    reply = await check.verify(inbound(message("SubscriptionConfirmation")))
    assert reply == Reply(b'{"subscription": "confirmed"}', "application/json", 200)
    assert confirm.urls == [SUBSCRIBE_URL]


async def test_sns_unsubscribe_confirmation_is_recorded_and_never_confirmed():
    confirm = Fetcher()
    check = verifier(confirmer=confirm, confirm=True)
    reply = await check.verify(inbound(message("UnsubscribeConfirmation")))
    assert reply == Reply(b'{"subscription": "recorded"}')
    assert confirm.urls == []


async def test_sns_notification_with_confirm_true_is_relayed_and_confirms_nothing():
    confirm = Fetcher()
    assert await verifier(confirmer=confirm, confirm=True).verify(inbound(message())) is None
    assert confirm.urls == []


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x",
        "https://evil.example.com/?Action=ConfirmSubscription&Token=x",
        "https://sns.eu-west-1.amazonaws.com.evil.example.com/?Action=ConfirmSubscription",
    ],
)
async def test_sns_subscribe_url_off_an_sns_https_host_is_never_called(url):
    confirm = Fetcher()
    check = verifier(confirmer=confirm, confirm=True)
    await rejected(check, message("SubscriptionConfirmation", SubscribeURL=url), "SubscribeURL")
    assert confirm.urls == []


async def test_sns_failed_confirmation_is_a_verification_error():
    confirm = Fetcher(error=aiohttp.ClientResponseError(None, (), status=403))  # type: ignore[arg-type]
    check = verifier(confirmer=confirm, confirm=True)
    await rejected(check, message("SubscriptionConfirmation"), "cannot confirm subscription")


async def test_sns_tampered_confirmation_is_rejected_before_confirming():
    confirm = Fetcher()
    document = message("SubscriptionConfirmation")
    document["SubscribeURL"] = document["SubscribeURL"].replace("Token=23", "Token=99")
    await rejected(verifier(confirmer=confirm, confirm=True), document, "signature does not match")
    assert confirm.urls == []


# --- plugin and config ---------------------------------------------------------------------


def test_sns_plugin_is_a_verifier_plugin_with_the_message_id_as_dedupe_key():
    assert isinstance(plugin, VerifierPlugin)
    assert (plugin.kind, plugin.name, plugin.default_dedupe) == (
        "verifier",
        "sns",
        "json:MessageId",
    )
    assert json.loads(plugin.sample_body)["Type"] == "Notification"


def test_sns_sign_is_not_possible_without_amazons_key():
    with pytest.raises(NotImplementedError):
        plugin.create(options(), None).sign(b"{}", "https://hooks.example.com/in/sns", NOW)


async def test_sns_verifier_without_an_http_client_cannot_fetch():
    await rejected(plugin.create(options(), None), message(), "cannot fetch signing certificate")


def test_sns_options_defaults():
    parsed = options()
    assert (parsed.topic_arns, parsed.confirm, parsed.tolerance) == (frozenset(), False, 7200.0)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            {"topic_arns": ["orders"]},
            'sources.x.verify.topic_arns: expected topic ARNs like arn:aws:sns:us-east-1:123456789012:orders, got "orders"',
        ),
        ({"topic_arns": [1]}, "sources.x.verify.topic_arns: expected a list of strings"),
        ({"confirm": "maybe"}, 'sources.x.verify.confirm: expected true or false, got "maybe"'),
        (
            {"tolerance": "soon"},
            'sources.x.verify.tolerance: expected a duration like 10s, got "soon"',
        ),
    ],
)
def test_sns_config_errors_are_reported_with_their_key_path(config, problem):
    problems: list[str] = []
    plugin.parse(Section(config, "sources.x.verify", problems))
    assert len(problems) == 1
    assert problems[0].startswith(problem)


# --- anything else -------------------------------------------------------------------------

HEADERS = ["x-amz-sns-message-type", "x-amz-sns-message-id", "x-amz-sns-topic-arn", "x-other"]


@settings(max_examples=200, deadline=None)
@given(headers=st.dictionaries(st.sampled_from(HEADERS), st.text()), body=st.binary())
async def test_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    with pytest.raises(VerificationError):
        await verifier().verify(inbound(body, headers=headers))


FIELDS = [
    "Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp", "SignatureVersion",
    "Signature", "SigningCertURL", "SubscribeURL", "Token",
]  # fmt: skip
VALUES = st.one_of(
    st.text(),
    st.sampled_from(
        ["Notification", "SubscriptionConfirmation", "1", "2", CERT_URL, STAMP, TOPIC, "AAAA"]
    ),
    st.integers(),
    st.none(),
    st.lists(st.text(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(st.sampled_from(FIELDS), VALUES))
async def test_arbitrary_sns_shaped_documents_are_never_accepted_and_never_crash(fields):
    with pytest.raises(VerificationError):
        await verifier(confirmer=Fetcher(), confirm=True).verify(inbound(fields))
