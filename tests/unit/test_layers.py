"""The import-linter contracts in pyproject.toml name every core module they must."""

from __future__ import annotations

import tomllib
from pathlib import Path

import gateway

ROOT = Path(__file__).resolve().parents[2]
# What gateway/contract/ may import, and the contract itself.
BELOW_THE_CORE = {"gateway.section", "gateway.errors", "gateway.units", "gateway.clock",
                  "gateway.plugin", "gateway.contract"}  # fmt: skip


def contracts() -> list[dict[str, object]]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["tool"]["importlinter"]["contracts"])


def core_modules() -> set[str]:
    package = Path(gateway.__file__).parent
    names = {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
    names |= {path.parent.name for path in package.glob("*/__init__.py")}
    return {f"gateway.{name}" for name in names} - BELOW_THE_CORE


def test_the_contract_may_import_no_core_module_including_new_ones():
    (below,) = [
        c for c in contracts() if c.get("source_modules") == ["gateway.plugin", "gateway.contract"]
    ]
    forbidden = set(below["forbidden_modules"])  # type: ignore[call-overload]
    assert core_modules() - forbidden == set(), "add these to forbidden_modules in pyproject.toml"
    assert forbidden - core_modules() == set(), "these are no longer core modules"
