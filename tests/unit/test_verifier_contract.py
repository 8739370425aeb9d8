"""The cases every verifier passes, run on each through the plugin registry.

Valid, tampered body, wrong secret, expired, from the future, at the tolerance's edge,
the default tolerance the README documents, rotation with several secrets, and malformed
signature or timestamp headers: each provider signs with its own function
(tests/verifier_schemes.py), and the verifier is created exactly as the gateway creates
it. Every verifier module under plugins/verifiers/ must be here. A provider's own edge
cases and published test vectors are in its own tests/unit/test_verifier_<type>.py.
"""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from verifier_schemes import SCHEMES, Scheme, Signed
from verifiers import NOW, URL, inbound, options

from gateway.plugin import DEFAULT_TOLERANCE, Reply, Resources, VerificationError
from gateway.plugins import GROUP, load_registry

ROOT = Path(__file__).parents[2]
REGISTRY = load_registry()
GARBAGE = [
    "",
    " ",
    "garbage",
    "=",
    ",;,",
    "v1=",
    "t=,v1=",
    "sha256=",
    "\udcff",
    "é" * 9,
    "0" * 4096,
]
BAD_TIMES = [
    "",
    "abc",
    "-1",
    "1e9",
    "0x10",
    "9" * 40,
    "\udcff",
    "\uff11\uff12\uff13",
]  # fullwidth digits: not ASCII


# Each provider's default tolerance where it is not DEFAULT_TOLERANCE (5 minutes), as the
# README's Providers table gives it: the cases below read the default from the options, so
# this is what holds each one to its documented value.
TOLERANCES = {"calendly": 180.0, "paddle": 5.0, "twitch": 600.0, "linear": 60.0, "sns": 7200.0}


def by(attribute: str) -> list[Scheme]:
    return [scheme for scheme in SCHEMES if getattr(scheme, attribute)]


def each(schemes: list[Scheme]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("scheme", schemes, ids=lambda s: s.label)


class Fetches:
    """What a verifier fetches (SNS certificates), served from the scheme's table."""

    def __init__(self, served: dict[str, bytes]) -> None:
        self.served = served

    async def fetch(self, url: str, *, seconds: float = 5.0, max_bytes: int = 65536) -> bytes:
        return self.served[url]


def created(scheme: Scheme, configured: list[str], **extra: str) -> Any:
    """The verifier for `configured` secrets (and `extra` options), created through the
    registry as the gateway creates it."""
    plugin = REGISTRY.verifier(scheme.type)
    assert plugin is not None, f"verifier {scheme.type} is not installed"
    served = scheme.fetch(configured)
    config = {**scheme.config(configured), **extra}
    return plugin.create(options(plugin, config), Fetches(served) if served else None)


async def verify(scheme: Scheme, configured: list[str], sent: Signed, **extra: str) -> Reply | None:
    """What the verifier for `configured` secrets says of `sent`, received at NOW."""
    verifier = created(scheme, configured, **extra)
    return await verifier.verify(inbound(sent.headers, sent.body, NOW, url=URL))


def signed(scheme: Scheme, secret: str = "secret-a", when: dt.datetime = NOW) -> Signed:
    return scheme.sign(secret, scheme.body, when)


def tolerance(scheme: Scheme) -> float:
    """The verifier's default tolerance, as its options hold it."""
    parsed = options(REGISTRY.verifier(scheme.type), scheme.config(["secret-a"]))
    held = getattr(parsed, "tolerance", None) or parsed.signing.tolerance  # gitlab: nested
    return float(held)


def test_every_built_in_verifier_has_a_scheme():
    built_in = {
        entry.name.partition(".")[2]
        for entry in entry_points(group=GROUP)
        if entry.name.startswith("verifier.") and entry.value.startswith("plugins.")
    }
    assert {scheme.type for scheme in SCHEMES} == built_in


def defines_a_plugin(path: Path) -> bool:
    """Whether the module assigns a module-level `plugin`, as every plugin module does."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "plugin" for t in targets):
                return True
    return False


def test_every_verifier_module_under_plugins_is_registered_so_the_contract_runs_it():
    # The check above counts entry points; a module with a `plugin` that nobody registered
    # would escape it (and hookgate), so count the files too. stamped.py and v0.py are
    # schemes that several verifiers share and define no plugin of their own.
    modules = {
        f"plugins.verifiers.{path.stem}:plugin"
        for path in (ROOT / "plugins" / "verifiers").glob("*.py")
        if defines_a_plugin(path)
    }
    registered = {entry.value for entry in entry_points(group=GROUP)}
    assert modules - registered == set()
    assert len(modules) == len({scheme.type for scheme in SCHEMES})


@each(SCHEMES)
async def test_a_validly_signed_request_is_accepted(scheme):
    assert await verify(scheme, ["secret-a"], signed(scheme)) is None


@each(by("covers_body"))
async def test_a_tampered_body_is_rejected(scheme):
    sent = signed(scheme)
    with pytest.raises(VerificationError, match=re.escape(scheme.mismatch)):
        await verify(scheme, ["secret-a"], Signed(sent.headers, scheme.tamper(sent.body)))


@each(SCHEMES)
async def test_a_request_signed_with_another_secret_is_rejected(scheme):
    with pytest.raises(VerificationError, match=re.escape(scheme.mismatch)):
        await verify(scheme, ["secret-a"], signed(scheme, "secret-b"))


@each([scheme for scheme in SCHEMES if not scheme.covers_body])
async def test_a_scheme_that_does_not_sign_the_body_accepts_any_body(scheme):
    sent = signed(scheme)
    assert (
        await verify(scheme, ["secret-a"], Signed(sent.headers, scheme.tamper(sent.body))) is None
    )


@each(by("timestamped"))
def test_a_verifier_defaults_to_its_providers_documented_tolerance(scheme):
    assert tolerance(scheme) == TOLERANCES.get(scheme.type, DEFAULT_TOLERANCE)


def test_every_documented_tolerance_belongs_to_a_timestamped_scheme():
    assert set(TOLERANCES) <= {scheme.type for scheme in by("timestamped")}


@each(by("timestamped"))
async def test_a_request_older_than_the_tolerance_is_rejected(scheme):
    when = NOW - dt.timedelta(seconds=tolerance(scheme) + 1)
    with pytest.raises(VerificationError, match="too old"):
        await verify(scheme, ["secret-a"], signed(scheme, when=when))


@each(by("timestamped"))
async def test_a_request_from_further_in_the_future_than_the_tolerance_is_rejected(scheme):
    when = NOW + dt.timedelta(seconds=tolerance(scheme) + 1)
    with pytest.raises(VerificationError, match="in the future"):
        await verify(scheme, ["secret-a"], signed(scheme, when=when))


@each(by("timestamped"))
@pytest.mark.parametrize("sign", [-1, 1], ids=["past", "future"])
async def test_a_request_at_the_edge_of_the_tolerance_is_accepted(scheme, sign):
    when = NOW + dt.timedelta(seconds=sign * (tolerance(scheme) - 1))
    assert await verify(scheme, ["secret-a"], signed(scheme, when=when)) is None


@each(by("timestamped"))
@pytest.mark.parametrize(("age", "accepted"), [(89, True), (-89, True), (91, False), (-91, False)])
async def test_a_configured_tolerance_is_honoured(scheme, age, accepted):
    sent = signed(scheme, when=NOW - dt.timedelta(seconds=age))
    if accepted:
        assert await verify(scheme, ["secret-a"], sent, tolerance="90s") is None
    else:
        with pytest.raises(VerificationError, match="too old" if age > 0 else "in the future"):
            await verify(scheme, ["secret-a"], sent, tolerance="90s")


@each(by("rotates"))
@pytest.mark.parametrize("secret", ["secret-old", "secret-new"])
async def test_during_rotation_a_request_signed_with_any_configured_secret_is_accepted(
    scheme, secret
):
    assert await verify(scheme, ["secret-old", "secret-new"], signed(scheme, secret)) is None


@each(by("rotates"))
async def test_during_rotation_a_request_signed_with_neither_secret_is_rejected(scheme):
    with pytest.raises(VerificationError, match=re.escape(scheme.mismatch)):
        await verify(scheme, ["secret-old", "secret-new"], signed(scheme, "secret-other"))


@each(by("header"))
async def test_a_missing_signature_header_is_rejected(scheme):
    sent = signed(scheme)
    headers = {k: v for k, v in sent.headers.items() if k.lower() != scheme.header.lower()}
    with pytest.raises(VerificationError):
        await verify(scheme, ["secret-a"], Signed(headers, sent.body))


@each(by("header"))
@pytest.mark.parametrize("value", GARBAGE, ids=range(len(GARBAGE)))
async def test_a_malformed_signature_header_is_rejected(scheme, value):
    sent = signed(scheme)
    with pytest.raises(VerificationError):
        await verify(
            scheme, ["secret-a"], Signed({**sent.headers, scheme.header: value}, sent.body)
        )


@each(by("timestamp_header"))
@pytest.mark.parametrize("value", BAD_TIMES, ids=range(len(BAD_TIMES)))
async def test_a_malformed_timestamp_header_is_rejected(scheme, value):
    sent = signed(scheme)
    headers = {**sent.headers, scheme.timestamp_header: value}
    with pytest.raises(VerificationError):
        await verify(scheme, ["secret-a"], Signed(headers, sent.body))


def test_the_fake_fetch_takes_what_resources_fetch_takes():
    # SNS is created with `Fetches` in place of Resources: if the two drifted apart, the
    # contract would pass on a call production cannot make.
    real, fake = inspect.signature(Resources.fetch), inspect.signature(Fetches.fetch)
    assert [(p.name, p.kind, p.default) for p in real.parameters.values()] == [
        (p.name, p.kind, p.default) for p in fake.parameters.values()
    ]
