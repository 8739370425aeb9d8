import datetime
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from plugins.signers.standard_webhooks import decode_secret, sign, signature_headers

# The test vector published with the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_vector_signature_matches() -> None:
    assert sign(decode_secret(SECRET), MSG_ID, TIMESTAMP, BODY) == SIGNATURE


def test_signature_headers_carry_id_timestamp_and_signature() -> None:
    assert signature_headers(decode_secret(SECRET), MSG_ID, TIMESTAMP, BODY) == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": SIGNATURE,
    }


def test_signature_matches_reference_library_sign() -> None:
    when = datetime.datetime.fromtimestamp(1700000000, tz=datetime.UTC)
    expected = Webhook(SECRET).sign(MSG_ID, when, '{"a": "\u00e9"}')
    assert sign(decode_secret(SECRET), MSG_ID, 1700000000, '{"a": "\u00e9"}'.encode()) == expected


def test_reference_library_verifies_our_headers() -> None:
    # The library checks the timestamp against the wall clock, so sign with it.
    headers = signature_headers(decode_secret(SECRET), MSG_ID, int(time.time()), BODY)
    assert Webhook(SECRET).verify(BODY, headers) == {"test": 2432232314}


def test_reference_library_rejects_our_headers_for_another_body() -> None:
    headers = signature_headers(decode_secret(SECRET), MSG_ID, int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"test": 1}', headers)


def test_different_keys_give_different_signatures() -> None:
    assert sign(b"key-one", MSG_ID, TIMESTAMP, BODY) != sign(b"key-two", MSG_ID, TIMESTAMP, BODY)


@pytest.mark.parametrize(
    "secret",
    [
        SECRET,
        SECRET.removeprefix("whsec_"),  # bare base64
    ],
)
def test_decode_secret_accepts_prefixed_and_bare_secrets(secret: str) -> None:
    assert decode_secret(secret) == decode_secret(SECRET)
    assert len(decode_secret(secret)) == 24


def test_decode_secret_accepts_unpadded_base64() -> None:
    assert decode_secret("whsec_AQID") == b"\x01\x02\x03"
    assert decode_secret("whsec_AQI") == b"\x01\x02"
    assert decode_secret("whsec_AQI=") == b"\x01\x02"


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        "whsec_!!!!",
        "whsec_not base64",
        "whsec_A",  # one character can never be base64
        "whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw",
    ],
)
def test_decode_secret_rejects_bad_input(secret: str) -> None:
    with pytest.raises(ValueError, match=r"^expected a base64 secret like whsec_\.\.\.$"):
        decode_secret(secret)
