"""PagerDuty v3: comma-separated ``v1=<hex HMAC-SHA256 of the body>`` in X-PagerDuty-Signature."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifiers import Builders

from gateway.plugin import Section, VerificationError
from plugins.verifiers.pagerduty import check, plugin, sign

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)

# The vector shipped with PagerDuty's own Go client, the verifier its docs point to:
# https://github.com/PagerDuty/go-pagerduty/blob/main/webhookv3/webhookv3_test.go
# (scheme: https://developer.pagerduty.com/docs/ZG9jOjExMDI5NTkz-verifying-signatures)
PUBLISHED_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
PUBLISHED_SIGNATURE = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
PUBLISHED_MISMATCH = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"
PUBLISHED_BODY = (
    b'{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated",'
    b'"resource_type":"incident","occurred_at":"2021-04-26T17:36:27.458Z",'
    b'"agent":{"html_url":"https://acme.pagerduty.com/users/PLH1HKV","id":"PLH1HKV",'
    b'"self":"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer",'
    b'"type":"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident",'
    b'"self":"https://api.pagerduty.com/incidents/PGR0VU2",'
    b'"html_url":"https://acme.pagerduty.com/incidents/PGR0VU2","number":2,'
    b'"status":"triggered","title":"A little bump in the road",'
    b'"service":{"html_url":"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH",'
    b'"self":"https://api.pagerduty.com/services/PF9KMXH","summary":"API Service",'
    b'"type":"service_reference"},'
    b'"assignees":[{"html_url":"https://acme.pagerduty.com/users/PTUXL6G","id":"PTUXL6G",'
    b'"self":"https://api.pagerduty.com/users/PTUXL6G","summary":"User 123",'
    b'"type":"user_reference"}],'
    b'"escalation_policy":{"html_url":"https://acme.pagerduty.com/escalation_policies/PUS0KTE",'
    b'"id":"PUS0KTE","self":"https://api.pagerduty.com/escalation_policies/PUS0KTE",'
    b'"summary":"Default","type":"escalation_policy_reference"},'
    b'"teams":[{"html_url":"https://acme.pagerduty.com/teams/PFCVPS0","id":"PFCVPS0",'
    b'"self":"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering",'
    b'"type":"team_reference"}],'
    b'"priority":{"html_url":"https://acme.pagerduty.com/account/incident_priorities",'
    b'"id":"PSO75BM","self":"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1",'
    b'"type":"priority_reference"},"urgency":"high",'
    b'"conference_bridge":{"conference_number":1000,"conference_url":"https://example.com"},'
    b'"resolve_reason":null}}}'
)


build = Builders(plugin, body=PUBLISHED_BODY, url="https://hooks.example.com/in/pd")
options, inbound = build.options, build.inbound


def v1(secret: str, body: bytes = PUBLISHED_BODY) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_pagerduty_published_vector_is_accepted():
    opts = options(secret=PUBLISHED_SECRET)
    assert check(inbound({"X-PagerDuty-Signature": PUBLISHED_SIGNATURE}), opts) is None


def test_pagerduty_published_mismatch_is_rejected():
    opts = options(secret=PUBLISHED_SECRET)
    with pytest.raises(VerificationError, match="signature does not match"):
        check(inbound({"X-PagerDuty-Signature": PUBLISHED_MISMATCH}), opts)


@pytest.mark.parametrize(
    "value",
    [
        f"{PUBLISHED_MISMATCH},{PUBLISHED_SIGNATURE}",
        f"{PUBLISHED_SIGNATURE},{PUBLISHED_MISMATCH}",
        f"{PUBLISHED_MISMATCH}, {PUBLISHED_SIGNATURE}",  # a space after the comma
        f"v2=abc,{PUBLISHED_SIGNATURE}",  # other versions are ignored
        PUBLISHED_SIGNATURE.upper().replace("V1=", "v1="),
    ],
)
def test_pagerduty_any_matching_v1_entry_is_enough(value):
    opts = options(secret=PUBLISHED_SECRET)
    assert check(inbound({"x-pagerduty-signature": value}), opts) is None


def test_pagerduty_missing_header_is_rejected():
    with pytest.raises(VerificationError, match="missing X-PagerDuty-Signature header"):
        check(inbound({}), options(secret=PUBLISHED_SECRET))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "missing X-PagerDuty-Signature header"),
        (PUBLISHED_SIGNATURE.removeprefix("v1="), "has no v1=<hex> signature"),
        ("v1=", "has no v1=<hex> signature"),
        (",,,", "has no v1=<hex> signature"),
        ("v2=" + PUBLISHED_SIGNATURE[3:], "has no v1=<hex> signature"),
        ("V1=" + PUBLISHED_SIGNATURE[3:], "has no v1=<hex> signature"),
        ("sha256=" + PUBLISHED_SIGNATURE[3:], "has no v1=<hex> signature"),
        ("v1=zz", "signature does not match"),
        (PUBLISHED_SIGNATURE[:-1], "signature does not match"),
        ("v1=\udcff" + PUBLISHED_SIGNATURE[3:], "has no v1=<hex> signature"),
        ("v1=é," + PUBLISHED_SIGNATURE, "has no v1=<hex> signature"),
    ],
)
def test_pagerduty_malformed_header_is_rejected(value, reason):
    with pytest.raises(VerificationError, match=reason):
        check(inbound({"X-PagerDuty-Signature": value}), options(secret=PUBLISHED_SECRET))


def test_pagerduty_rotation_on_their_side_sends_both_and_one_configured_secret_is_enough():
    header = f"{v1('old')},{v1('new')}"
    assert check(inbound({"X-PagerDuty-Signature": header}), options(secret="new")) is None
    with pytest.raises(VerificationError):
        check(inbound({"X-PagerDuty-Signature": header}), options(secret="other"))


def test_pagerduty_sign_sends_one_entry_per_secret_and_round_trips():
    opts = options(secrets=["old", "new"])
    headers = sign(opts, plugin.sample_body, "", NOW)
    assert headers == {
        "X-PagerDuty-Signature": f"{v1('old', plugin.sample_body)},{v1('new', plugin.sample_body)}"
    }
    assert check(inbound(headers, plugin.sample_body), opts) is None
    assert check(inbound(headers, plugin.sample_body), options(secret="new")) is None


def test_pagerduty_dedupes_on_the_event_id():
    assert plugin.default_dedupe == "json:event.id"


def test_pagerduty_missing_secret_is_reported_with_its_key_path():
    problems: list[str] = []
    plugin.parse(Section({}, "sources.x.verify", problems))
    assert problems == ["sources.x.verify.secret: needs secret or secrets"]


TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))
HEADER_TEXT = st.one_of(
    TEXT, TEXT.map("v1=".__add__), st.lists(TEXT.map("v1=".__add__)).map(",".join)
)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(["X-PagerDuty-Signature", "x-other"]), HEADER_TEXT),
    body=st.binary(),
)
def test_pagerduty_arbitrary_requests_are_never_accepted_and_never_crash(headers, body):
    with pytest.raises(VerificationError):
        check(inbound(headers, body), options(secret=PUBLISHED_SECRET))
