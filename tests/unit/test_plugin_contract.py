"""gateway.plugin, the plugin contract: its names are pinned, documented and the core's own."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import gateway
import gateway.plugin as contract
from gateway import errors, outbound, plugins, section
from gateway.contract import message, verify
from gateway.contract import outcome as policy
from gateway.plugin import VerificationError, hexdecode

ROOT = Path(__file__).parents[2]
EMBEDDING = ROOT / "docs" / "embedding"

# Changing this list changes what every third-party plugin may rely on: do it on purpose,
# and say so in docs/plugins.md.
PINNED = [
    "DEFAULT_TOLERANCE", "DELIVERED", "HOP_BY_HOP", "IDENTITY_HEADERS", "IDENTITY_PREFIX",
    "NO_CREDENTIALS", "PRIVATE_KEY_ONLY", "REQUIRED", "RETRYABLE", "SAMPLE_BODY", "USER_AGENT",
    "AnswerTooLarge", "BadAnswer", "Credentials", "FetchError", "Headers", "HttpClient", "Inbound", "Kind", "Message", "Middleware", "MiddlewarePlugin",
    "Outcome", "Plugin", "Reply", "Resources", "Section", "Send", "SendResult", "TargetPlugin",
    "VerificationError", "Verifier", "VerifierPlugin", "VerifierSpec",
    "b64", "b64decode", "check_timestamp", "classify_status", "compose", "header",
    "header_value_problem", "hexdecode", "hmac_digest", "is_identity_header", "key_value_pairs",
    "matches_any", "parse_retry_after", "replace_headers", "require", "sample_id", "secrets_from",
    "settable_header_problem", "show", "tolerance_from",
]  # fmt: skip


def test_the_contract_exports_exactly_the_pinned_names():
    assert contract.__all__ == PINNED


def test_every_public_name_of_the_module_is_in_all():
    public = {
        name
        for name, value in vars(contract).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(PINNED)


@pytest.mark.parametrize(
    "name", [n for n in PINNED if callable(getattr(contract, n)) and not n.isupper()]
)
def test_every_class_and_function_of_the_contract_is_documented(name):
    value = getattr(contract, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert inspect.getdoc(value), f"gateway.plugin.{name} has no docstring"


def public_members() -> list[str]:
    """Every public method and property of the contract's classes, as "Class.member"."""
    members = []
    for name in PINNED:
        value = getattr(contract, name)
        if not inspect.isclass(value) or not value.__module__.startswith("gateway."):
            continue
        for attribute, member in vars(value).items():
            function = member.fget if isinstance(member, property) else member
            if not attribute.startswith("_") and inspect.isfunction(function):
                members.append(f"{name}.{attribute}")
    return members


@pytest.mark.parametrize("member", public_members())
def test_every_method_and_property_of_the_contract_is_documented(member):
    name, attribute = member.split(".")
    member_value = vars(getattr(contract, name))[attribute]
    function = member_value.fget if isinstance(member_value, property) else member_value
    assert inspect.getdoc(function), f"gateway.plugin.{member} has no docstring"


def test_the_module_docstring_names_every_export():
    doc = contract.__doc__ or ""
    missing = [name for name in PINNED if f"`{name}`" not in doc]
    assert missing == []


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("Inbound", verify), ("Reply", verify), ("VerifierSpec", verify), ("require", verify),
        ("Credentials", verify),
        ("Message", message), ("SendResult", message), ("compose", message),
        ("Outcome", policy), ("classify_status", policy), ("DELIVERED", policy),
        ("Resources", plugins), ("VerifierPlugin", plugins), ("TargetPlugin", plugins),
        ("HOP_BY_HOP", outbound), ("is_identity_header", outbound),
        ("Section", section), ("show", section), ("VerificationError", errors),
    ],
)  # fmt: skip
def test_the_contract_hands_out_the_objects_the_core_uses(name, where):
    assert getattr(contract, name) is getattr(where, name)


def gateway_imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return {m for m in modules if m == "gateway" or m.startswith("gateway.")}


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "plugins").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_plugins_and_the_examples_import_only_the_contract_from_gateway(path):
    # import-linter checks the packages too (scripts/lint); this covers every file and
    # names the file when it breaks. (The embedding host, a host application and not a
    # plugin, is docs/embedding/, held to the embedding API below.)
    assert gateway_imports(path) <= {"gateway.plugin"}


@pytest.mark.parametrize("path", sorted(EMBEDDING.rglob("*.py")), ids=lambda p: p.name)
def test_the_embedding_example_uses_only_the_embedding_api(path):
    used = {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "gateway"
    }
    assert set(gateway.__all__) == {"create_app", "load_config"}
    assert used, "the example no longer uses gateway.create_app: update this test"
    assert used <= set(gateway.__all__)


@pytest.mark.parametrize(
    ("text", "expected"), [("00ff", b"\x00\xff"), ("ABcd", b"\xab\xcd"), ("0" * 64, bytes(32))]
)
def test_hexdecode_reads_pairs_of_hex_digits_in_either_case(text, expected):
    assert hexdecode(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "ab cd", " ab", "zz", "0x00", "ab\n", "éé"])
def test_hexdecode_refuses_anything_else_with_the_given_reason(text):
    with pytest.raises(VerificationError, match="X-Sig is not hex"):
        hexdecode(text, "X-Sig is not hex")
