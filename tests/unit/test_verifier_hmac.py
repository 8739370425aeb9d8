"""Generic HMAC: configured as GitHub and as Slack it accepts their published vectors; RFC
vectors for every algorithm and encoding; templates, timestamps, ids, rotation, config errors."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.hmac import check, plugin, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
STAMP = int(NOW.timestamp())


build = Builders(plugin)
options, problems_for, inbound = build.options, build.problems_for, build.inbound


def digest(secret, message, algorithm="sha256"):
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).digest()


# A template with every field, as Standard Webhooks / Svix sign (but with a plain secret).
FULL = {
    "secret": "s3cret",
    "header": "X-Signature",
    "prefix": "v1,",
    "encoding": "base64",
    "template": "{id}.{timestamp}.{body}",
    "id_header": "X-Id",
    "timestamp_header": "X-Timestamp",
}


def full_headers(secret="s3cret", body=b"{}", stamp=STAMP, ident="msg_1"):
    mac = digest(secret, f"{ident}.{stamp}.".encode() + body)
    return {
        "X-Signature": "v1," + base64.b64encode(mac).decode(),
        "X-Timestamp": str(stamp),
        "X-Id": ident,
    }


# --- published vectors ---------------------------------------------------------------------

# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
GITHUB = {
    "secret": "It's a Secret to Everybody",
    "header": "X-Hub-Signature-256",
    "prefix": "sha256=",
}
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# https://api.slack.com/authentication/verifying-requests-from-slack (the worked example)
SLACK = {
    "secret": "8f742231b10e8888abcd99yyyzzz85a5",
    "header": "X-Slack-Signature",
    "prefix": "v0=",
    "template": "v0:{timestamp}:{body}",
    "timestamp_header": "X-Slack-Request-Timestamp",
}
SLACK_BODY = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
SLACK_HEADERS = {
    "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    "X-Slack-Request-Timestamp": "1531420618",
}
SLACK_NOW = dt.datetime.fromtimestamp(1531420618 + 60, dt.UTC)


def test_hmac_configured_as_github_accepts_githubs_published_vector():
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    assert check(inbound(headers, b"Hello, World!"), options(**GITHUB)) is None
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(headers, b"Hello, World?"), options(**GITHUB))


def test_hmac_configured_as_slack_accepts_slacks_published_vector():
    opts = options(**SLACK)
    assert check(inbound(SLACK_HEADERS, SLACK_BODY, SLACK_NOW), opts) is None
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(SLACK_HEADERS, SLACK_BODY + b"&x=1", SLACK_NOW), opts)
    with pytest.raises(VerificationError, match="timestamp too old"):
        check(inbound(SLACK_HEADERS, SLACK_BODY, NOW), opts)


# RFC 2202 section 3 and RFC 4231 section 4.3 (test case 2): key "Jefe".
RFC_VECTORS = [
    ("sha1", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    ("sha256", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("sha512", "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
]  # fmt: skip


@pytest.mark.parametrize(("algorithm", "expected"), RFC_VECTORS)
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_hmac_rfc_vectors_are_accepted_for_every_algorithm_and_encoding(
    algorithm, expected, encoding
):
    opts = options(secret="Jefe", header="X-Sig", algorithm=algorithm, encoding=encoding)
    raw = bytes.fromhex(expected)
    value = expected if encoding == "hex" else base64.b64encode(raw).decode()
    assert check(inbound({"X-Sig": value}, b"what do ya want for nothing?"), opts) is None
    assert sign(opts, b"what do ya want for nothing?", "", NOW) == {"X-Sig": value}


# --- signature header ----------------------------------------------------------------------


def test_hmac_hex_in_upper_case_and_prefix_in_any_case_are_accepted():
    opts = options(**GITHUB)
    value = "SHA256=" + GITHUB_SIGNATURE.removeprefix("sha256=").upper()
    assert check(inbound({"X-Hub-Signature-256": value}, b"Hello, World!"), opts) is None


def test_hmac_base64_without_padding_is_accepted():
    opts = options(secret="s", header="X-Sig", encoding="base64")
    value = base64.b64encode(digest("s", b"{}")).decode().rstrip("=")
    assert check(inbound({"X-Sig": value}), opts) is None


def test_hmac_signature_made_with_another_algorithm_is_rejected():
    opts = options(secret="s", header="X-Sig", algorithm="sha512")
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound({"X-Sig": digest("s", b"{}").hex()}), opts)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing X-Hub-Signature-256 header"),
        ({"X-Hub-Signature-256": ""}, "missing X-Hub-Signature-256 header"),
        ({"X-Other": GITHUB_SIGNATURE}, "missing X-Hub-Signature-256 header"),
        ({"X-Hub-Signature-256": GITHUB_SIGNATURE[7:]}, "does not start with 'sha256='"),
        ({"X-Hub-Signature-256": "sha1=" + "0" * 40}, "does not start with 'sha256='"),
        ({"X-Hub-Signature-256": "sha256="}, "is not hex"),
        ({"X-Hub-Signature-256": "sha256=zz"}, "is not hex"),
        ({"X-Hub-Signature-256": GITHUB_SIGNATURE[:-1]}, "is not hex"),
        ({"X-Hub-Signature-256": GITHUB_SIGNATURE[:7] + "7 5 7 1"}, "is not hex"),
        ({"X-Hub-Signature-256": "sha256=\u0663\u0664"}, "is not hex"),
        ({"X-Hub-Signature-256": "sha256=\udcff\udcfe"}, "is not hex"),
        ({"X-Hub-Signature-256": "sha256=\ud800"}, "is not hex"),
        ({"X-Hub-Signature-256": "\u017fha256=" + "0" * 64}, "does not start with"),
        ({"X-Hub-Signature-256": GITHUB_SIGNATURE[:-2]}, "signature does not match"),
        ({"X-Hub-Signature-256": GITHUB_SIGNATURE + "00"}, "signature does not match"),
    ],
)
def test_hmac_missing_or_malformed_signature_header_is_rejected(headers, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound(headers, b"Hello, World!"), options(**GITHUB))


@pytest.mark.parametrize(
    "value", ["not base64!", "====", "YQ=x", "\u00e9\u00e9\u00e9\u00e9", "\ud800AAA"]
)
def test_hmac_malformed_base64_signature_is_rejected(value):
    opts = options(secret="s", header="X-Sig", encoding="base64")
    with pytest.raises(VerificationError, match="malformed base64"):
        check(inbound({"X-Sig": value}), opts)


# --- rotation ------------------------------------------------------------------------------


# --- template, timestamp and id ------------------------------------------------------------


def test_hmac_full_template_is_accepted():
    assert check(inbound(full_headers()), options(**FULL)) is None


@pytest.mark.parametrize(
    ("changes", "body"),
    [
        ({"X-Id": "msg_2"}, b"{}"),
        ({"X-Timestamp": str(STAMP - 1)}, b"{}"),
        ({}, b'{"a": 1}'),
    ],
)
def test_hmac_tampered_id_timestamp_or_body_is_rejected(changes, body):
    headers = {**full_headers(), **changes}
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound(headers, body), options(**FULL))


@pytest.mark.parametrize("missing", ["X-Signature", "X-Timestamp", "X-Id"])
def test_hmac_missing_header_of_the_template_is_rejected(missing):
    headers = full_headers()
    del headers[missing]
    with pytest.raises(VerificationError, match=f"missing {missing} header"):
        check(inbound(headers), options(**FULL))


@pytest.mark.parametrize("offset", [-300, 300])
def test_hmac_timestamp_at_the_tolerance_edge_is_accepted(offset):
    opts = options(**FULL, tolerance="5m")
    assert check(inbound(full_headers(stamp=STAMP + offset)), opts) is None


def test_hmac_default_tolerance_is_five_minutes():
    assert check(inbound(full_headers(stamp=STAMP - 300)), options(**FULL)) is None
    with pytest.raises(VerificationError, match="timestamp too old"):
        check(inbound(full_headers(stamp=STAMP - 301)), options(**FULL))


@pytest.mark.parametrize(
    "stamp",
    [
        "",
        "soon",
        "1.7e9",
        "-1700000000",
        " 1700000000",
        "1700000000.5",
        "\u0661\u0667",
        "0x1f",
        "99999999999999",
    ],
)
def test_hmac_malformed_timestamp_is_rejected(stamp):
    headers = {**full_headers(), "X-Timestamp": stamp}
    with pytest.raises(VerificationError, match=r"(?i)timestamp"):
        check(inbound(headers), options(**FULL))


def test_hmac_id_is_signed_as_the_bytes_received():
    # aiohttp hands non-UTF-8 header bytes over as surrogates; the id is signed as sent.
    raw = b"caf\xe9"
    mac = digest("s3cret", raw + f".{STAMP}.{{}}".encode())
    headers = {
        "X-Signature": "v1," + base64.b64encode(mac).decode(),
        "X-Timestamp": str(STAMP),
        "X-Id": raw.decode("utf-8", "surrogateescape"),
    }
    assert check(inbound(headers), options(**FULL)) is None
    with pytest.raises(VerificationError, match="malformed X-Id header"):
        check(inbound({**headers, "X-Id": "caf\ud800"}), options(**FULL))


def test_hmac_body_is_signed_as_raw_bytes_never_decoded():
    body = b"\xff\xfe not utf-8 \x00"
    opts = options(
        secret="s", header="X-Sig", template="{timestamp}:{body}", timestamp_header="X-T"
    )
    mac = digest("s", f"{STAMP}:".encode() + body).hex()
    assert check(inbound({"X-Sig": mac, "X-T": str(STAMP)}, body), opts) is None


def test_hmac_braces_that_are_not_placeholders_are_literal():
    opts = options(
        secret="s",
        header="X-Sig",
        template='{"t": {timestamp}, "b": {body}}',
        timestamp_header="X-T",
    )
    mac = digest("s", f'{{"t": {STAMP}, "b": {{}}}}'.encode()).hex()
    assert check(inbound({"X-Sig": mac, "X-T": str(STAMP)}), opts) is None


def test_hmac_template_may_repeat_a_placeholder():
    opts = options(secret="s", header="X-Sig", template="{body}|{body}")
    assert check(inbound({"X-Sig": digest("s", b"{}|{}").hex()}), opts) is None


# --- sign ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"secret": "s", "header": "X-Sig"},
        {
            "secret": "s",
            "header": "X-Sig",
            "algorithm": "sha1",
            "encoding": "base64",
            "prefix": "sha1=",
        },
        GITHUB,
        SLACK,
        FULL,
        {**FULL, "secrets": ["new", "old"], "secret": None},
    ],
)
def test_hmac_sign_round_trips(config):
    opts = options(**config)
    headers = sign(opts, b'{"hello": "world"}', "https://hooks.example.com/in/x", NOW)
    assert check(inbound(headers, b'{"hello": "world"}'), opts) is None


def test_hmac_sign_sets_the_timestamp_and_a_fresh_id():
    first = sign(options(**FULL), b"{}", "", NOW)
    second = sign(options(**FULL), b"{}", "", NOW)
    assert first["X-Timestamp"] == str(STAMP)
    assert first["X-Id"] != second["X-Id"]


# --- config --------------------------------------------------------------------------------


def test_hmac_defaults_are_sha256_hex_body_no_prefix():
    opts = options(secret="s", header="X-Sig")
    assert (opts.algorithm, opts.encoding, opts.prefix, opts.template) == (
        "sha256",
        "hex",
        "",
        ("body",),
    )
    assert (opts.timestamp_header, opts.id_header, opts.tolerance) == (None, None, 300.0)
    assert plugin.default_dedupe is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"header": "X-Sig"}, ["sources.x.verify.secret: needs secret or secrets"]),
        ({"secret": "s"}, ["sources.x.verify.header: is required"]),
        (
            {"secret": "s", "header": "X Sig"},
            ['sources.x.verify.header: expected a header name, got "X Sig"'],
        ),
        (
            {"secret": "s", "header": "X-Sig", "algorithm": "md5"},
            ['sources.x.verify.algorithm: expected one of sha1, sha256, sha512, got "md5"'],
        ),
        (
            {"secret": "s", "header": "X-Sig", "encoding": "base32"},
            ['sources.x.verify.encoding: expected one of hex, base64, got "base32"'],
        ),
        (
            {"secret": "s", "header": "X-Sig", "template": "{body}.{nonce}"},
            [
                "sources.x.verify.template: unknown placeholder {nonce} (known: {body}, {timestamp}, {id})"
            ],
        ),
        (
            {"secret": "s", "header": "X-Sig", "template": "{id}"},
            [
                "sources.x.verify.template: must contain {body}, or the signature would not cover the body",
                "sources.x.verify.id_header: is required when the template uses {id}",
            ],
        ),
        (
            {"secret": "s", "header": "X-Sig", "template": "{timestamp}.{body}"},
            ["sources.x.verify.timestamp_header: is required when the template uses {timestamp}"],
        ),
        (
            {"secret": "s", "header": "X-Sig", "timestamp_header": "X-T"},
            [
                "sources.x.verify.timestamp_header: is set but the template does not sign {timestamp}"
            ],
        ),
        (
            {"secret": "s", "header": "X-Sig", "id_header": "X-Id"},
            ["sources.x.verify.id_header: is set but the template does not sign {id}"],
        ),
        (
            {"secret": "s", "header": "X-Sig", "tolerance": "1m"},
            ["sources.x.verify.tolerance: applies only with a timestamp_header"],
        ),
        (
            {**FULL, "tolerance": "soon"},
            ['sources.x.verify.tolerance: expected a duration like 10s, got "soon"'],
        ),
    ],
)
def test_hmac_config_errors_are_reported_with_their_key_path(config, expected):
    assert problems_for(**config) == expected


# --- anything else -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-Signature", "X-Timestamp", "X-Id", "x-other"]), st.text()
    ),
    body=st.binary(),
)
def test_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    for config in (
        FULL,
        {**FULL, "encoding": "hex", "prefix": ""},
        {"secret": "s", "header": "X-Signature"},
    ):
        with pytest.raises(VerificationError):
            check(inbound(headers, body), options(**config))
