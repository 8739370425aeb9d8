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

    def parse(self, section: Section) -> Any:
        """The target's options (ideally a frozen dataclass); problems go to `section`."""
        ...

    def create(self, options: Any, resources: Resources) -> Send:
        """The `Send` for one target's config, from what `parse` returned."""
        ...


@runtime_checkable
class MiddlewarePlugin(Protocol):
    """Creates a `Middleware` for a target's chain (``middleware:`` or ``sign:``)."""

    kind: Literal["middleware"]
    name: str

    def parse(self, section: Section) -> Any:
        """The middleware's options; problems go to `section`, with their key paths."""
        ...

    def create(self, options: Any, resources: Resources) -> Middleware:
        """The `Middleware` for one place in a chain, from what `parse` returned."""
        ...


@runtime_checkable
class VerifierPlugin(Protocol):
    """Creates the `Verifier` of a source's ``verify:``.

    `resources` is None when nothing will be verified (``hookgate send`` only signs).
    hookgate also looks for these optional members, as `VerifierSpec` has them:
    ``credentials(options)`` (the `Credentials` to store redacted, default none),
    ``sample_body`` and ``sample_content_type`` (what ``hookgate send`` posts) and
    ``prepare(options, body, now)`` (the body as the provider would send it).
    """

    kind: Literal["verifier"]
    name: str
    default_dedupe: str | None  # where the provider puts its delivery id, e.g. "header:X-..."

    def parse(self, section: Section) -> Any:
        """The verifier's options; problems go to `section`, with their key paths."""
        ...

    def create(self, options: Any, resources: Resources | None) -> Verifier:
        """The `Verifier` for one source's ``verify:``, from what `parse` returned."""
        ...


Plugin = TargetPlugin | MiddlewarePlugin | VerifierPlugin
