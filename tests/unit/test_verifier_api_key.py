"""A shared API key in a header (optionally after a prefix such as "Bearer ") or in a
query parameter. No provider publishes a vector for a shared key."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import VerificationError
from plugins.verifiers.api_key import check, plugin, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
URL = "https://hooks.example.com/in/x"


build = Builders(plugin)
options, problems_for = build.options, build.problems_for


def inbound(headers=None, query=None, body=b"{}"):
    return build.inbound(headers, body, query=query)


def test_api_key_in_the_default_header_is_accepted():
    assert check(inbound({"X-API-Key": "k-123"}), options(secret="k-123")) is None
    assert check(inbound({"x-api-key": "k-123"}), options(secret="k-123")) is None


def test_api_key_in_a_configured_header_is_accepted():
    opts = options(secret="k-123", header="X-Webhook-Token")
    assert check(inbound({"X-Webhook-Token": "k-123"}), opts) is None
    with pytest.raises(VerificationError, match="missing X-Webhook-Token header"):
        check(inbound({"X-API-Key": "k-123"}), opts)


@pytest.mark.parametrize("value", ["Bearer k-123", "bearer k-123", "BEARER  k-123"])
def test_api_key_after_a_prefix_is_accepted(value):
    opts = options(secret="k-123", header="Authorization", prefix="Bearer ")
    assert check(inbound({"Authorization": value}), opts) is None


def test_api_key_in_a_query_parameter_is_accepted():
    opts = options(secret="k-123", query="key")
    assert check(inbound(query={"key": "k-123"}), opts) is None


def test_api_key_in_a_header_is_ignored_when_the_query_is_configured():
    opts = options(secret="k-123", query="key")
    with pytest.raises(VerificationError, match="missing key query parameter"):
        check(inbound({"X-API-Key": "k-123"}), opts)


@pytest.mark.parametrize("given_key", ["k-124", "k-12", "k-1234", "K-123", "", " "])
def test_api_key_wrong_key_is_rejected(given_key):
    with pytest.raises(VerificationError):
        check(inbound({"X-API-Key": given_key}), options(secret="k-123"))
    with pytest.raises(VerificationError):
        check(inbound(query={"key": given_key}), options(secret="k-123", query="key"))


def test_api_key_body_is_not_covered_and_any_body_is_accepted():
    # A shared key authenticates the caller, not the payload: there is nothing to tamper with.
    assert check(inbound({"X-API-Key": "k"}, body=b"\xff anything"), options(secret="k")) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing Authorization header"),
        ({"Authorization": ""}, "missing Authorization header"),
        ({"Authorization": "k-123"}, "Authorization header lacks 'Bearer '"),
        ({"Authorization": "Basic k-123"}, "Authorization header lacks 'Bearer '"),
        ({"Authorization": "Bearer"}, "Authorization header lacks 'Bearer '"),
        ({"Authorization": "Bearer "}, "empty Authorization header"),
        ({"Authorization": "Bearer k-123\ud800"}, "malformed Authorization header"),
        ({"Authorization": "Bearer k-123\udcff"}, "API key does not match"),
        ({"Authorization": "Bearer k-12\u00b3"}, "API key does not match"),
        ({"Authorization": "\u0392earer k-123"}, "lacks 'Bearer '"),
    ],
)
def test_api_key_missing_or_malformed_header_is_rejected(headers, reason):
    opts = options(secret="k-123", header="Authorization", prefix="Bearer ")
    with pytest.raises(VerificationError, match=reason):
        check(inbound(headers), opts)


@pytest.mark.parametrize("query", [{}, {"key": ""}, {"other": "k-123"}])
def test_api_key_missing_query_parameter_is_rejected(query):
    with pytest.raises(VerificationError, match="missing key query parameter"):
        check(inbound(query=query), options(secret="k-123", query="key"))


@pytest.mark.parametrize(
    "config",
    [
        {"secret": "k\u00e9y"},
        {"secrets": ["new", "old"], "header": "Authorization", "prefix": "Bearer "},
    ],
)
def test_api_key_sign_round_trips_in_header_form(config):
    opts = options(**config)
    headers = sign(opts, b"{}", URL, NOW)
    assert check(inbound(headers), opts) is None


def test_api_key_sign_in_query_form_needs_the_key_in_the_url():
    opts = options(secret="k-123", query="key")
    assert sign(opts, b"{}", URL + "?key=k-123", NOW) == {}
    with pytest.raises(NotImplementedError, match=r"add \?key=<key>"):
        sign(opts, b"{}", URL, NOW)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, ["sources.x.verify.secret: needs secret or secrets"]),
        ({"secret": ""}, ["sources.x.verify.secret: needs secret or secrets"]),
        (
            {"secrets": ["a", ""]},
            ["sources.x.verify.secrets: an empty secret would let anyone sign"],
        ),
        (
            {"secret": "k", "header": "X-Key", "query": "key"},
            ["sources.x.verify.query: use header or query, not both"],
        ),
        (
            {"secret": "k", "query": ["key"]},
            ["sources.x.verify.query: expected a string, got ['key']"],
        ),
    ],
)
def test_api_key_config_errors_are_reported_with_their_key_path(config, expected):
    assert problems_for(**config) == expected


def test_api_key_defaults_to_the_x_api_key_header():
    opts = options(secret="k")
    assert (opts.name, opts.in_query, opts.prefix) == ("X-API-Key", False, "")
    assert (plugin.name, plugin.default_dedupe) == ("api-key", None)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["X-API-Key", "Authorization", "x-other"]), st.text()),
    query=st.dictionaries(st.sampled_from(["key", "other"]), st.text()),
    body=st.binary(),
)
def test_arbitrary_requests_are_never_accepted_and_never_crash(headers, query, body):
    for config in (
        {"secret": "k-123"},
        {"secret": "k-123", "header": "Authorization", "prefix": "Bearer "},
        {"secret": "k-123", "query": "key"},
    ):
        with pytest.raises(VerificationError):
            check(inbound(headers, query, body), options(**config))
