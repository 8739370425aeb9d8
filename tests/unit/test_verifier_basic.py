"""HTTP Basic authentication: RFC 7617's examples, rotation, malformed credentials."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.basic import check, plugin, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


build = Builders(plugin)
options, problems_for, inbound = build.options, build.problems_for, build.inbound


def basic(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


# https://datatracker.ietf.org/doc/html/rfc7617#section-2 and #section-2.1 (UTF-8 charset)
RFC_VECTORS = [
    ("Aladdin", "open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
    ("test", "123\u00a3", "dGVzdDoxMjPCow=="),
]


@pytest.mark.parametrize(("username", "password", "token"), RFC_VECTORS)
def test_basic_rfc_7617_examples_are_accepted(username, password, token):
    opts = options(username=username, password=password)
    assert check(inbound({"Authorization": f"Basic {token}"}), opts) is None
    assert sign(opts, b"{}", "", NOW) == {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_basic_scheme_is_case_insensitive(scheme):
    opts = options(username="Aladdin", password="open sesame")
    assert (
        check(inbound({"Authorization": f"{scheme}  QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}), opts) is None
    )


def test_basic_password_may_contain_colons():
    opts = options(username="u", password="a:b:c")
    assert check(inbound(basic(b"u:a:b:c")), opts) is None


@pytest.mark.parametrize(
    "credentials",
    [b"Aladdin:open sesame!", b"Aladdin:open sesam", b"aladdin:open sesame", b"Aladdin :open sesame",
     b"Aladdin:", b":open sesame", b"Aladdin:Open sesame", b"open sesame:Aladdin"],
)  # fmt: skip
def test_basic_wrong_username_or_password_is_rejected(credentials):
    opts = options(username="Aladdin", password="open sesame")
    with pytest.raises(VerificationError, match="credentials do not match"):
        check(inbound(basic(credentials)), opts)


def test_basic_body_is_not_covered_and_any_body_is_accepted():
    # Basic authenticates the caller, not the payload: there is nothing to tamper with.
    opts = options(username="u", password="p")
    assert check(inbound(basic(b"u:p"), b"anything at all"), opts) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing Authorization header"),
        ({"Authorization": ""}, "missing Authorization header"),
        ({"X-Authorization": "Basic dTpw"}, "missing Authorization header"),
        ({"Authorization": "Bearer dTpw"}, "Authorization is not Basic"),
        ({"Authorization": "dTpw"}, "Authorization is not Basic"),
        ({"Authorization": "Basicx dTpw"}, "Authorization is not Basic"),
        ({"Authorization": "Basic"}, "Basic credentials have no colon"),
        ({"Authorization": "Basic dXA="}, "Basic credentials have no colon"),
        ({"Authorization": "Basic not base64!"}, "malformed Basic credentials"),
        ({"Authorization": "Basic dTp"}, "malformed Basic credentials"),
        ({"Authorization": "Basic d Tpw"}, "malformed Basic credentials"),
        ({"Authorization": "Basic \u00e9\u00e9\u00e9\u00e9"}, "malformed Basic credentials"),
        ({"Authorization": "Basic \udcff\udcff\udcff\udcff"}, "malformed Basic credentials"),
        ({"Authorization": "Basic \ud800AAA"}, "malformed Basic credentials"),
        ({"Authorization": "\u212aasic dTpw"}, "Authorization is not Basic"),
    ],
)
def test_basic_missing_or_malformed_authorization_is_rejected(headers, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound(headers), options(username="u", password="p"))


@pytest.mark.parametrize("credentials", [b"old:one", b"new:two", b"top:three"])
def test_basic_rotation_accepts_any_configured_credential(credentials):
    opts = options(
        username="top",
        password="three",
        credentials=[
            {"username": "old", "password": "one"},
            {"username": "new", "password": "two"},
        ],
    )
    assert check(inbound(basic(credentials)), opts) is None


@pytest.mark.parametrize("credentials", [b"old:two", b"new:one", b"old:three"])
def test_basic_rotation_never_mixes_usernames_and_passwords(credentials):
    opts = options(
        credentials=[{"username": "old", "password": "one"}, {"username": "new", "password": "two"}]
    )
    with pytest.raises(VerificationError, match="credentials do not match"):
        check(inbound(basic(credentials)), opts)


def test_basic_sign_round_trips_with_the_first_credential():
    opts = options(
        credentials=[
            {"username": "new", "password": "p\u00e4ss"},
            {"username": "old", "password": "x"},
        ]
    )
    headers = sign(opts, b"{}", "https://hooks.example.com/in/x", NOW)
    assert headers == basic("new:p\u00e4ss".encode())
    assert check(inbound(headers), opts) is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, ["sources.x.verify.username: is required", "sources.x.verify.password: is required"]),
        ({"username": "u"}, ["sources.x.verify.password: is required"]),
        ({"username": "u", "password": ""}, ["sources.x.verify.password: is required"]),
        (
            {"username": "u:v", "password": "p"},
            ["sources.x.verify.username: may not contain a colon (RFC 7617)"],
        ),
        (
            {"credentials": []},
            ["sources.x.verify.credentials: expected a list of {username, password}, got []"],
        ),
        (
            {"credentials": "u:p"},
            ['sources.x.verify.credentials: expected a list of {username, password}, got "u:p"'],
        ),
        (
            {"credentials": [{"username": "u"}]},
            ["sources.x.verify.credentials[0].password: is required"],
        ),
        (
            {"credentials": [{"username": "u", "password": "p"}, "x"]},
            [
                'sources.x.verify.credentials[1]: expected a mapping, got "x"',
                "sources.x.verify.credentials[1].username: is required",
                "sources.x.verify.credentials[1].password: is required",
            ],
        ),
        (
            {"credentials": [{"username": "u", "password": "p", "pasword": "q"}]},
            ["sources.x.verify.credentials[0].pasword: unknown key"],
        ),
        (
            {"username": "u", "credentials": [{"username": "v", "password": "p"}]},
            ["sources.x.verify.password: is required"],
        ),
    ],
)
def test_basic_config_errors_are_reported_with_their_key_path(config, expected):
    assert problems_for(**config) == expected


def test_basic_has_no_default_dedupe():
    assert (plugin.name, plugin.default_dedupe) == ("basic", None)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["Authorization", "x-other"]), st.text()),
    body=st.binary(),
)
def test_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(username="Aladdin", password="open sesame"))
