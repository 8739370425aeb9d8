"""What the relay hands to middleware and targets, and what they hand back.

The relay and proxy mode build a `Message` per attempt; a target plugin's `Send` turns it
into a `SendResult`; middleware sits between them (`compose`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from gateway.contract.outcome import Outcome

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Message:
    """One attempt to deliver one event to one target; middleware changes it with `replace`."""

    event_id: UUID
    delivery_id: UUID
    attempt: int
    source: str
    target: str
    event_type: str | None
    received_at: dt.datetime
    now: dt.datetime
    body: bytes
    headers: Headers
    request_headers: Headers = ()
    # The provider's request line (raw path, raw query without "?"), for targets that
    # send to the same path, like the built-in upstream target.
    method: str = "POST"
    path: str = "/"
    query: str = ""

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and replays: the delivery id is derived from (event, target)."""
        return str(self.delivery_id)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one attempt came to."""

    outcome: Outcome
    status: int | None = None
    headers: Headers = ()
    body: bytes = b""
    error: str | None = None
    retry_after: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


Send = Callable[[Message], Awaitable[SendResult]]


class Middleware(Protocol):
    """Relay middleware: may change the message, short-circuit, or look at the result."""

    async def __call__(self, message: Message, call_next: Send) -> SendResult: ...


def compose(middleware: Sequence[Middleware], send: Send) -> Send:
    """One `Send` running `middleware` in order around `send`; the first is outermost."""
    for item in reversed(middleware):
        send = _bind(item, send)
    return send


def _bind(item: Middleware, call_next: Send) -> Send:
    async def run(message: Message) -> SendResult:
        return await item(message, call_next)

    return run
