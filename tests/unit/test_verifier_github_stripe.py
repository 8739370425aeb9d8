"""The reference verifiers: GitHub (published vector) and Stripe."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import NOW, inbound, options

from gateway.plugin import Section, VerificationError
from plugins.verifiers import github, stripe

# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
GITHUB_VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_published_vector_is_accepted():
    opts = options(github.plugin, secret="It's a Secret to Everybody")
    assert (
        github.check(inbound({"X-Hub-Signature-256": GITHUB_VECTOR}, b"Hello, World!"), opts)
        is None
    )


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({"X-Hub-Signature-256": GITHUB_VECTOR}, b"Hello, World?", "signature does not match"),
        ({}, b"Hello, World!", "missing X-Hub-Signature-256 header"),
        ({"X-Hub-Signature-256": GITHUB_VECTOR[7:]}, b"Hello, World!", "is not sha256=<hex>"),
        ({"X-Hub-Signature-256": "sha256=zz"}, b"Hello, World!", "signature does not match"),
        ({"X-Hub-Signature-256": "sha1=" + "0" * 40}, b"Hello, World!", "is not sha256=<hex>"),
    ],
)
def test_github_bad_requests_are_rejected_with_a_reason(headers, body, reason):
    opts = options(github.plugin, secret="It's a Secret to Everybody")
    with pytest.raises(VerificationError, match=reason):
        github.check(inbound(headers, body), opts)


def test_github_rotation_accepts_either_secret_and_sign_round_trips():
    opts = options(github.plugin, secrets=["old", "new"])
    for secret in ("old", "new"):
        headers = github.sign(options(github.plugin, secret=secret), b"{}", "", NOW)
        assert github.check(inbound(headers), opts) is None
    with pytest.raises(VerificationError):
        github.check(
            inbound(github.sign(options(github.plugin, secret="other"), b"{}", "", NOW)), opts
        )


def test_a_missing_secret_is_a_config_error_with_its_path():
    problems: list[str] = []
    github.plugin.parse(Section({}, "sources.gh.verify", problems))
    assert problems == ["sources.gh.verify.secret: needs secret or secrets"]


def stripe_header(secret: str, body: bytes, stamp: int, extra: str = "") -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={digest}{extra}"}


def test_stripe_valid_signature_is_accepted_among_several_v1():
    opts = options(stripe.plugin, secret="whsec_test")
    stamp = int(NOW.timestamp())
    headers = stripe_header("whsec_test", b"{}", stamp, extra=",v1=" + "0" * 64 + ",v0=abc")
    assert stripe.check(inbound(headers), opts) is None


def test_stripe_timestamp_at_the_tolerance_edge_is_accepted():
    opts = options(stripe.plugin, secret="s", tolerance="5m")
    assert (
        stripe.check(inbound(stripe_header("s", b"{}", int(NOW.timestamp()) - 300)), opts) is None
    )


@pytest.mark.parametrize(
    "value",
    ["", "t=1", "v1=ab", "t=x,v1=ab", "t=1,t=2,v1=ab", "garbage", "t=,v1=", ",,,", "t=1e400,v1=a"],
)
def test_stripe_malformed_header_is_rejected(value):
    with pytest.raises(VerificationError):
        stripe.check(inbound({"Stripe-Signature": value}), options(stripe.plugin, secret="s"))


def test_stripe_sign_round_trips():
    opts = options(stripe.plugin, secret="s")
    assert stripe.check(inbound(stripe.sign(opts, b"{}", "", NOW)), opts) is None


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["Stripe-Signature", "X-Hub-Signature-256", "x-other"]), st.text()
    ),
    body=st.binary(),
)
def test_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    for plugin, opts in (
        (github, options(github.plugin, secret="s")),
        (stripe, options(stripe.plugin, secret="s")),
    ):
        with pytest.raises(VerificationError):
            plugin.check(inbound(headers, body), opts)
