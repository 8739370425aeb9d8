"""The three kinds of plugin, as protocols: what hookgate calls on each.

Every plugin has a `kind`, a `name` (its ``type:`` in hookgate.yaml), a `parse` that
validates its options from a `Section` (problems go to the section, with key paths)
and a `create` that builds what runs, given the options `parse` returned.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from gateway.contract.message import Middleware, Send
from gateway.contract.resources import Resources
from gateway.contract.verify import Verifier
from gateway.section import Section

Kind = Literal["target", "middleware", "verifier"]


@runtime_checkable
class TargetPlugin(Protocol):
    """Creates the `Send` that delivers a message (HTTP, a broker, ...).

    What `create` returns may also have ``async def aclose()``: hookgate calls it once
    (close connections there), at shutdown or, when a reload changed or removed the
    target, after the last attempt through it ended. A reload calls `create` again for a
    changed target, while the old object may still be sending.
    """

    kind: Literal["target"]
    name: str

    def parse(self, section: Section) -> Any: ...

    def create(self, options: Any, resources: Resources) -> Send: ...


@runtime_checkable
class MiddlewarePlugin(Protocol):
    """Creates a `Middleware` for a target's chain (``middleware:`` or ``sign:``)."""

    kind: Literal["middleware"]
    name: str

    def parse(self, section: Section) -> Any: ...

    def create(self, options: Any, resources: Resources) -> Middleware: ...


@runtime_checkable
class VerifierPlugin(Protocol):
    """Creates the `Verifier` of a source's ``verify:``.

    `resources` is None when nothing will be verified (``hookgate send`` only signs).
    """

    kind: Literal["verifier"]
    name: str
    default_dedupe: str | None  # where the provider puts its delivery id, e.g. "header:X-..."

    def parse(self, section: Section) -> Any: ...

    def create(self, options: Any, resources: Resources | None) -> Verifier: ...


Plugin = TargetPlugin | MiddlewarePlugin | VerifierPlugin
