"""docs/plugins.md is true to the plugin contract: its snippets run, its excerpts are the code.

The verifier, target and middleware snippets are excerpts of the example package's
modules, so each definition in them must be that module's (docstrings and comments
aside); the other snippets (options, a broker-like target, a test of a plugin) are run
here as written, with only the names the guide leaves to the reader filled in.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import re
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from multidict import CIMultiDict

import gateway.plugin as contract
from gateway.plugin import (
    DELIVERED,
    RETRYABLE,
    Inbound,
    Message,
    Outcome,
    Section,
    settable_header_problem,
)

ROOT = Path(__file__).parents[2]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()
EXAMPLE = ROOT / "examples" / "hookgate-plugin-example"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", GUIDE, re.DOTALL | re.MULTILINE)


def block(language: str, marker: str) -> str:
    """The one `language` block of the guide that contains `marker`."""
    (found,) = [text for text in blocks(language) if marker in text]
    return found


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Imports a module of the example package from examples/, as its source stands."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))

    def load(name: str) -> ModuleType:
        return importlib.import_module(f"hookgate_plugin_example.{name}")

    return load


def without_docstrings(node: ast.AST) -> str:
    for each in ast.walk(node):
        body = getattr(each, "body", None)
        if (
            isinstance(each, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            each.body = body[1:] or [ast.Pass()]
    return ast.dump(node)


def definitions(tree: ast.Module) -> dict[str, str]:
    """Each top-level def, class and assignment by name, without docstrings."""
    named: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            named[node.name] = without_docstrings(node)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            named[node.targets[0].id] = without_docstrings(node)
    return named


def imported_from_the_contract(tree: ast.Module) -> set[str]:
    return {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "gateway.plugin"
        for alias in node.names
    }


def test_the_guide_imports_nothing_from_hookgate_but_the_contract():
    for text in blocks("python"):
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gateway"):
                assert node.module == "gateway.plugin", text
        assert imported_from_the_contract(tree) <= set(contract.__all__)


def test_the_guides_table_names_every_export_of_the_contract():
    table = GUIDE[GUIDE.index("| for | names |") : GUIDE.index("## How hookgate finds")]
    assert [name for name in contract.__all__ if f"`{name}`" not in table] == []


@pytest.mark.parametrize(
    ("marker", "module"),
    [
        ("plugin = VerifierSpec(", "shared_token"),
        ("class AddReceivedAtPlugin", "received_at"),
        ("class JsonlFilePlugin", "jsonl_file"),
    ],
)
def test_the_guides_excerpts_are_the_examples_code(example, marker, module):
    excerpt = ast.parse(block("python", marker))
    source = example(module)
    code = ast.parse(Path(source.__file__).read_text())
    shown, actual = definitions(excerpt), definitions(code)
    assert shown, "the excerpt defines nothing"
    assert {name: actual.get(name) for name in shown} == shown
    assert imported_from_the_contract(excerpt) <= imported_from_the_contract(code)


def test_the_guides_entry_points_are_the_examples():
    shown = tomllib.loads(block("toml", '"hookgate.plugins"'))
    with (EXAMPLE / "pyproject.toml").open("rb") as file:
        declared = tomllib.load(file)["project"]["entry-points"]
    assert shown["project"]["entry-points"] == declared


@dataclass(frozen=True, slots=True)
class Options:
    header: str
    url: str
    timeout: float


def options_parser() -> Any:
    """The guide's `parse(self, section)`, defined as written."""
    names = {"Section": Section, "Options": Options, "DEFAULT_HEADER": "X-Received-At",
             "settable_header_problem": settable_header_problem}  # fmt: skip
    exec(block("python", 'section.duration("timeout"'), names)
    return names["parse"]


def parsed(config: dict[str, Any]) -> tuple[Options, list[str]]:
    problems: list[str] = []
    result = options_parser()(None, Section(config, "targets.x.middleware[0]", problems))
    return result, problems


def test_the_guides_options_snippet_reads_defaults_durations_and_required_keys():
    assert parsed({"url": "http://q/", "timeout": "250ms"}) == (
        Options("X-Received-At", "http://q/", 0.25),
        [],
    )
    assert parsed({"url": "http://q/"})[0].timeout == 10.0
    assert parsed({})[1] == ["targets.x.middleware[0].url: is required"]


def test_the_guides_options_snippet_reports_a_header_at_its_key_path():
    _, problems = parsed({"url": "http://q/", "header": "X-Hookgate-Attempt"})
    assert len(problems) == 1
    assert problems[0].startswith("targets.x.middleware[0].header: ")


class QueueUnavailable(Exception):
    pass


@dataclass
class QueueClient:
    """A queue for the guide's target sketch: records what it is given."""

    down: bool = False
    published: list[tuple[str, bytes, str]] = field(default_factory=list)
    closed: bool = False

    async def publish(self, queue: str, body: bytes, *, message_id: str) -> None:
        if self.down:
            raise QueueUnavailable("the queue is down")
        self.published.append((queue, body, message_id))

    async def close(self) -> None:
        self.closed = True


@dataclass(frozen=True, slots=True)
class QueueOptions:
    queue: str


def queue_target() -> Any:
    """The guide's `QueueTarget`, defined as written."""
    names = {"dataclass": dataclass, "QueueClient": QueueClient, "Options": QueueOptions,
             "QueueUnavailable": QueueUnavailable}  # fmt: skip
    names.update({name: getattr(contract, name) for name in contract.__all__})
    exec(block("python", "class QueueTarget:"), names)
    return names["QueueTarget"]


def message() -> Message:
    return Message(
        event_id=uuid.uuid4(), delivery_id=uuid.uuid4(), attempt=1, source="s", target="t",
        event_type=None, received_at=NOW, now=NOW, body=b'{"n": 1}', headers=(),
    )  # fmt: skip


async def test_the_guides_target_sketch_delivers_with_the_idempotency_key():
    client = QueueClient()
    target = queue_target()(QueueOptions("orders"), client)
    sent = message()
    result = await target(sent)
    assert result.outcome in DELIVERED
    assert client.published == [("orders", b'{"n": 1}', str(sent.delivery_id))]
    await target.aclose()
    assert client.closed


async def test_the_guides_target_sketch_reports_an_unreachable_queue_as_retryable():
    result = await queue_target()(QueueOptions("orders"), QueueClient(down=True))(message())
    assert result.outcome is Outcome.CONNECT_ERROR
    assert result.outcome in RETRYABLE
    assert result.error == "the queue is down"


async def test_the_guides_testing_snippet_runs_against_the_example_verifier(example):
    snippet = block("python", "problems: list[str] = []")
    code = compile(snippet, "docs/plugins.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    names = {"plugin": example("shared_token").plugin, "Section": Section, "Inbound": Inbound,
             "CIMultiDict": CIMultiDict, "now": NOW}  # fmt: skip
    await eval(code, names)  # its own asserts: no problems, and the request is accepted
    assert names["problems"] == []
    assert names["request"].headers["x-shared-token"] == "s3cret"
