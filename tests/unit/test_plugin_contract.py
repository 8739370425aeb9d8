"""gateway.plugin, the plugin contract: its names are pinned, documented and the core's own."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import gateway.plugin as contract
from gateway import errors, plugins, section
from gateway.contract import message, verify
from gateway.contract import outcome as policy
from gateway.plugin import VerificationError, hexdecode
from gateway.relay import lanes

ROOT = Path(__file__).parents[2]
EXAMPLE_PLUGINS = ROOT / "examples" / "hookgate-plugin-example"

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
        ("HOP_BY_HOP", lanes), ("is_identity_header", lanes),
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
    sorted([*(ROOT / "plugins").rglob("*.py"), *EXAMPLE_PLUGINS.rglob("*.py")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_plugins_and_the_example_import_only_the_contract_from_gateway(path):
    # import-linter checks this too (scripts/lint); this names the file when it breaks.
    assert gateway_imports(path) <= {"gateway.plugin"}


@pytest.mark.parametrize(
    ("text", "expected"), [("00ff", b"\x00\xff"), ("ABcd", b"\xab\xcd"), ("0" * 64, bytes(32))]
)
def test_hexdecode_reads_pairs_of_hex_digits_in_either_case(text, expected):
    assert hexdecode(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "ab cd", " ab", "zz", "0x00", "ab\n", "éé"])
def test_hexdecode_refuses_anything_else_with_the_given_reason(text):
    with pytest.raises(VerificationError, match="X-Sig is not hex"):
        hexdecode(text, "X-Sig is not hex")
