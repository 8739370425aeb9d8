"""Provider handshakes through the whole app: each is verified, answered synchronously with
the body the provider expects, recorded as an event without deliveries, and never relayed;
a forged one is a 401 and is not stored. Ordinary events from the same sources are relayed.

Each test ends with an ordinary event relayed to the same target: once it has arrived, the
target's log shows the handshakes were not sent ahead of it, and zero delivery rows show
they never will be.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import GatewayTestServer, fetch, make_config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from gateway.app import create_app
from gateway.plugins import GROUP, Registry
from plugins.verifiers.sns import Plugin as SnsPlugin
from plugins.verifiers.sns import SnsVerifier

SECRET = "handshake-signing-secret"
WRONG_SECRET = "not-the-signing-secret"


def config(database_url: str, target_url: str, verify: str, source_extra: str = ""):
    """One source `hook` verified by `verify` (a YAML flow mapping), routed to one target."""
    return make_config(
        database_url,
        f"""
sources:
  hook:
    verify: {verify}
    {source_extra}
targets:
  app: {{url: "{target_url}"}}
routes:
  - {{source: hook, targets: [app]}}
""",
    )


async def stored(database_url: str) -> dict[bytes, int]:
    """Every stored event's raw body, with how many deliveries it has.

    (Not ordered by id: on a frozen clock all ids share their time bits.)
    """
    rows = await fetch(
        database_url,
        """SELECT e.body, (SELECT count(*) FROM hookgate.deliveries d WHERE d.event_id = e.id)
           FROM hookgate.events e""",
    )
    assert len({row[0] for row in rows}) == len(rows), "an event was stored twice"
    return {row[0]: row[1] for row in rows}


async def relayed_alone(recorder: Any, body: bytes) -> None:
    """`body` reaches the target, and nothing else did before it."""
    await recorder.wait_for(1)
    assert [sent for _, sent in recorder.requests] == [body]


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# --- Slack ---------------------------------------------------------------------------------

# https://docs.slack.dev/reference/events/url_verification
SLACK_CHALLENGE = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
SLACK_VERIFICATION = (
    b'{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"'
    + SLACK_CHALLENGE.encode()
    + b'","type":"url_verification"}'
)
SLACK_EVENT = b'{"type":"event_callback","event_id":"Ev123","event":{"type":"app_mention"}}'


def slack_signed(body: bytes, now: dt.datetime, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    signature = "v0=" + hmac_hex(secret, f"v0:{stamp}:".encode() + body)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/json",
    }


async def test_slack_url_verification_is_answered_recorded_and_not_relayed(
    database_url, target, gateway, clock
):
    app = await target()
    client = await gateway(config(database_url, app.url, f'{{type: slack, secret: "{SECRET}"}}'))
    now = clock.now()

    answer = await client.post(
        "/in/hook", data=SLACK_VERIFICATION, headers=slack_signed(SLACK_VERIFICATION, now)
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert json.loads(await answer.read()) == {"challenge": SLACK_CHALLENGE}

    forged = SLACK_VERIFICATION.replace(b"3eZb", b"EVIL")
    refused = await client.post(
        "/in/hook", data=forged, headers=slack_signed(forged, now, WRONG_SECRET)
    )
    assert refused.status == 401

    relayed = await client.post(
        "/in/hook", data=SLACK_EVENT, headers=slack_signed(SLACK_EVENT, now)
    )
    assert relayed.status == 202
    await relayed_alone(app.recorder, SLACK_EVENT)
    assert await stored(database_url) == {SLACK_VERIFICATION: 0, SLACK_EVENT: 1}


# --- Twitch --------------------------------------------------------------------------------

# https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request
TWITCH_CHALLENGE = "pogchamp-kappa-360noscope-vohiyo"
TWITCH_VERIFICATION = (
    b'{"challenge": "pogchamp-kappa-360noscope-vohiyo", "subscription": {'
    b'"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "status": "webhook_callback_verification_pending",'
    b' "type": "channel.follow", "version": "2", "cost": 1,'
    b' "condition": {"broadcaster_user_id": "12826", "moderator_user_id": "12826"},'
    b' "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},'
    b' "created_at": "2019-11-16T10:11:12.634234626Z"}}'
)
TWITCH_NOTIFICATION = (
    b'{"subscription": {"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "type": "channel.follow"},'
    b' "event": {"user_id": "1234", "broadcaster_user_id": "1337"}}'
)


def twitch_signed(body: bytes, now: dt.datetime, kind: str, secret: str = SECRET) -> dict[str, str]:
    msg_id = str(uuid.uuid4())
    stamp = f"{now:%Y-%m-%dT%H:%M:%S.%f}123Z"  # nanoseconds, as Twitch sends them
    return {
        "Twitch-Eventsub-Message-Id": msg_id,
        "Twitch-Eventsub-Message-Timestamp": stamp,
        "Twitch-Eventsub-Message-Signature": "sha256="
        + hmac_hex(secret, f"{msg_id}{stamp}".encode() + body),
        "Twitch-Eventsub-Message-Type": kind,
        "Content-Type": "application/json",
    }


async def test_twitch_callback_verification_is_answered_recorded_and_not_relayed(
    database_url, target, gateway, clock
):
    app = await target()
    client = await gateway(config(database_url, app.url, f'{{type: twitch, secret: "{SECRET}"}}'))
    now = clock.now()
    kind = "webhook_callback_verification"

    answer = await client.post(
        "/in/hook", data=TWITCH_VERIFICATION, headers=twitch_signed(TWITCH_VERIFICATION, now, kind)
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/plain"
    assert await answer.read() == TWITCH_CHALLENGE.encode()

    forged = TWITCH_VERIFICATION.replace(b"pogchamp", b"notpogchamp")
    refused = await client.post(
        "/in/hook", data=forged, headers=twitch_signed(forged, now, kind, WRONG_SECRET)
    )
    assert refused.status == 401

    relayed = await client.post(
        "/in/hook",
        data=TWITCH_NOTIFICATION,
        headers=twitch_signed(TWITCH_NOTIFICATION, now, "notification"),
    )
    assert relayed.status == 202
    await relayed_alone(app.recorder, TWITCH_NOTIFICATION)
    assert await stored(database_url) == {TWITCH_VERIFICATION: 0, TWITCH_NOTIFICATION: 1}


# --- Zoom ----------------------------------------------------------------------------------

# https://developers.zoom.us/docs/api/webhooks/#validate-your-webhook-endpoint
ZOOM_TOKEN = "qgg8vlvZRS6UYooatFL8Aw"
ZOOM_VALIDATION = (
    b'{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,'
    b'"event":"endpoint.url_validation"}'
)
ZOOM_EVENT = b'{"event":"meeting.started","event_ts":1767225600000,"payload":{"object":{"id":"1"}}}'


def zoom_signed(body: bytes, now: dt.datetime, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    return {
        "x-zm-request-timestamp": stamp,
        "x-zm-signature": "v0=" + hmac_hex(secret, f"v0:{stamp}:".encode() + body),
        "Content-Type": "application/json",
    }


async def test_zoom_url_validation_is_answered_recorded_and_not_relayed(
    database_url, target, gateway, clock
):
    app = await target()
    client = await gateway(config(database_url, app.url, f'{{type: zoom, secret: "{SECRET}"}}'))
    now = clock.now()

    answer = await client.post(
        "/in/hook", data=ZOOM_VALIDATION, headers=zoom_signed(ZOOM_VALIDATION, now)
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert json.loads(await answer.read()) == {
        "plainToken": ZOOM_TOKEN,
        "encryptedToken": hmac_hex(SECRET, ZOOM_TOKEN.encode()),
    }

    # Signed with another secret, a validation would leak an HMAC of the attacker's token.
    refused = await client.post(
        "/in/hook", data=ZOOM_VALIDATION, headers=zoom_signed(ZOOM_VALIDATION, now, WRONG_SECRET)
    )
    assert refused.status == 401

    relayed = await client.post("/in/hook", data=ZOOM_EVENT, headers=zoom_signed(ZOOM_EVENT, now))
    assert relayed.status == 202
    await relayed_alone(app.recorder, ZOOM_EVENT)
    assert await stored(database_url) == {ZOOM_VALIDATION: 0, ZOOM_EVENT: 1}


# --- Meta ----------------------------------------------------------------------------------

# https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests
META_VERIFY_TOKEN = "meatyhamhock"
META_CHALLENGE = "1158201444"
META_EVENT = b'{"object":"page","entry":[{"id":"1","time":1767225600,"changes":[]}]}'


def meta_subscribe(token: str) -> str:
    query = {"hub.mode": "subscribe", "hub.challenge": META_CHALLENGE, "hub.verify_token": token}
    return urlencode(query)


async def test_meta_verification_request_is_answered_recorded_and_not_relayed(
    database_url, target, gateway
):
    app = await target()
    verify = f'{{type: meta, secret: "{SECRET}", verify_token: "{META_VERIFY_TOKEN}"}}'
    client = await gateway(config(database_url, app.url, verify, "methods: [GET, POST]"))

    query = meta_subscribe(META_VERIFY_TOKEN)
    answer = await client.get(f"/in/hook?{query}")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/plain"
    assert await answer.read() == META_CHALLENGE.encode()

    refused = await client.get(f"/in/hook?{meta_subscribe('not-our-token')}")
    assert refused.status == 401

    signature = "sha256=" + hmac_hex(SECRET, META_EVENT)
    relayed = await client.post(
        "/in/hook",
        data=META_EVENT,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )
    assert relayed.status == 202
    await relayed_alone(app.recorder, META_EVENT)
    rows = await fetch(
        database_url,
        """SELECT e.method, e.query, e.body,
                  (SELECT count(*) FROM hookgate.deliveries d WHERE d.event_id = e.id)
           FROM hookgate.events e ORDER BY e.method""",
    )
    stored_query = query.replace(META_VERIFY_TOKEN, "[redacted]")  # a credential: redacted
    assert stored_query != query
    assert [tuple(row) for row in rows] == [
        ("GET", stored_query, b"", 0),
        ("POST", "", META_EVENT, 1),
    ]


# --- Discord -------------------------------------------------------------------------------

DISCORD_KEY = Ed25519PrivateKey.generate()
DISCORD_PUBLIC = DISCORD_KEY.public_key().public_bytes_raw().hex()
DISCORD_FORGER = Ed25519PrivateKey.generate()
# https://discord.com/developers/docs/interactions/receiving-and-responding#receiving-an-interaction
DISCORD_PING = (
    b'{"application_id": "1234567890123456789", "id": "1234567890123456790",'
    b' "token": "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc5MA", "type": 1, "version": 1}'
)
# https://discord.com/developers/docs/events/webhook-events#payload-structure
DISCORD_EVENT = (
    b'{"version": 1, "application_id": "1234567890123456789", "type": 1,'
    b' "event": {"type": "APPLICATION_AUTHORIZED", "timestamp": "2026-01-01T00:00:00.000000",'
    b' "data": {"integration_type": 1, "scopes": ["applications.commands"]}}}'
)


def discord_signed(
    body: bytes, now: dt.datetime, key: Ed25519PrivateKey = DISCORD_KEY
) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    return {
        "X-Signature-Ed25519": key.sign(stamp.encode() + body).hex(),
        "X-Signature-Timestamp": stamp,
        "Content-Type": "application/json",
    }


async def test_discord_ping_is_answered_with_a_pong_recorded_and_not_relayed(
    database_url, target, gateway, clock
):
    app = await target()
    verify = f'{{type: discord, public_key: "{DISCORD_PUBLIC}"}}'
    client = await gateway(config(database_url, app.url, verify))
    now = clock.now()

    answer = await client.post(
        "/in/hook", data=DISCORD_PING, headers=discord_signed(DISCORD_PING, now)
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert json.loads(await answer.read()) == {"type": 1}

    # Discord's own security checks send PINGs with bad signatures and expect a 401.
    forged = b'{"type": 1}'
    refused = await client.post(
        "/in/hook", data=forged, headers=discord_signed(forged, now, DISCORD_FORGER)
    )
    assert refused.status == 401

    relayed = await client.post(
        "/in/hook", data=DISCORD_EVENT, headers=discord_signed(DISCORD_EVENT, now)
    )
    assert relayed.status == 202
    await relayed_alone(app.recorder, DISCORD_EVENT)
    assert await stored(database_url) == {DISCORD_PING: 0, DISCORD_EVENT: 1}


# --- Amazon SNS ----------------------------------------------------------------------------

SNS_TOPIC = "arn:aws:sns:eu-west-1:123456789012:orders"
SNS_CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
SNS_SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={SNS_TOPIC}&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d"
)
SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SNS_FORGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


SNS_PEM = self_signed(SNS_KEY)


def sns_message(
    kind: str, now: dt.datetime, key: rsa.RSAPrivateKey = SNS_KEY, **fields: str
) -> bytes:
    """A `kind` message as SNS sends it, signed (SignatureVersion 2) with `key`."""
    document = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": SNS_TOPIC,
        "Message": '{"order": 42}',
        "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "SignatureVersion": "2",
        "SigningCertURL": SNS_CERT_URL,
    }
    if kind == "Notification":
        document["Subject"] = "Order placed"
    else:
        document["Message"] = f"You have chosen to subscribe to the topic {SNS_TOPIC}."
        document["Token"] = "2336412f37fb687f5d51e6e241d09c805a5a57b30d"
        document["SubscribeURL"] = SNS_SUBSCRIBE_URL
    document.update(fields)
    text = "".join(f"{k}\n{document[k]}\n" for k in SNS_SIGNED_FIELDS[kind])
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    document["Signature"] = base64.b64encode(signature).decode()
    return json.dumps(document, indent=2).encode()


def sns_headers(kind: str) -> dict[str, str]:
    return {"x-amz-sns-message-type": kind, "Content-Type": "text/plain; charset=UTF-8"}


class Fetcher:
    """Answers every GET with `body` and records the URLs asked for."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.urls: list[str] = []

    async def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.body


class InjectedSns(SnsPlugin):
    """The installed ``sns`` verifier, fetching certificates and confirming through fakes."""

    def __init__(self, fetch: Fetcher, confirm: Fetcher) -> None:
        self.fetch, self.confirm = fetch, confirm

    def create(self, options: Any, resources: Any) -> SnsVerifier:
        return SnsVerifier(options, self.fetch, self.confirm)


@pytest.fixture
def sns_gateway(aiohttp_client, clock):
    """The whole app with the ``sns`` verifier replaced by `InjectedSns(fetch, confirm)`."""

    async def start(config, fetch: Fetcher, confirm: Fetcher):
        registry = Registry([*entry_points(group=GROUP), InjectedSns(fetch, confirm)])
        return await aiohttp_client(
            GatewayTestServer(create_app(config, clock=clock, registry=registry))
        )

    return start


@pytest.mark.parametrize(
    ("confirm", "answer_body", "confirmed"),
    [
        (False, {"subscription": "recorded"}, []),
        (True, {"subscription": "confirmed"}, [SNS_SUBSCRIBE_URL]),
    ],
)
async def test_sns_subscription_confirmation_is_answered_recorded_and_not_relayed(
    database_url, target, sns_gateway, clock, confirm, answer_body, confirmed
):
    app = await target()
    certificates, confirmer = Fetcher(SNS_PEM), Fetcher(b"<ConfirmSubscriptionResponse/>")
    verify = f'{{type: sns, topic_arns: ["{SNS_TOPIC}"], confirm: {str(confirm).lower()}}}'
    client = await sns_gateway(config(database_url, app.url, verify), certificates, confirmer)
    now = clock.now()

    # A forged confirmation first: it must not be confirmed, whatever its SubscribeURL.
    kind = "SubscriptionConfirmation"
    forged = sns_message(kind, now, key=SNS_FORGER)
    refused = await client.post("/in/hook", data=forged, headers=sns_headers(kind))
    assert refused.status == 401
    assert confirmer.urls == []

    handshake = sns_message(kind, now)
    answer = await client.post("/in/hook", data=handshake, headers=sns_headers(kind))
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert json.loads(await answer.read()) == answer_body
    assert confirmer.urls == confirmed

    notification = sns_message("Notification", now)
    relayed = await client.post("/in/hook", data=notification, headers=sns_headers("Notification"))
    assert relayed.status == 202
    await relayed_alone(app.recorder, notification)
    assert await stored(database_url) == {handshake: 0, notification: 1}
    assert certificates.urls == [SNS_CERT_URL]  # fetched once, then cached
