"""What the admin model hands out: pages, raw requests, deliveries with their attempt
history, target health and replay results, as frozen dataclasses, and the opaque
cursors of its lists. gateway/admin/model.py makes them; the API, the pages and the CLI
read them."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

from gateway.errors import AdminError
from gateway.storage.admin import (
    ReplayCounts,
    ReplayedRow,
    ReplayMark,
    ReplayRecord,
    TargetStats,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, newest first; `next_cursor` fetches the next (None: the last)."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Body:
    """Bytes as text when they are UTF-8, else base64; `size` in bytes either way."""

    text: str | None
    base64: str | None
    size: int

    @classmethod
    def of(cls, data: bytes | None) -> Body:
        data = data or b""
        try:
            return cls(data.decode("utf-8"), None, len(data))
        except UnicodeDecodeError:
            return cls(None, base64.b64encode(data).decode(), len(data))

    def raw(self) -> bytes:
        return self.text.encode() if self.text is not None else base64.b64decode(self.base64 or "")


@dataclass(frozen=True, slots=True)
class RawRequest:
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]  # in order, credentials redacted
    body: Body
    peer: str | None


@dataclass(frozen=True, slots=True)
class Verification:
    scheme: str | None  # the verifier that let it in; None: its source verified nothing
    verified: bool  # stored events passed it; refused requests are in the rejected log


@dataclass(frozen=True, slots=True)
class RouteMatch:
    index: int  # into the config's routes
    targets: tuple[str, ...]  # as the config has them now (empty if the route is gone)


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    worker: str
    started_at: dt.datetime
    duration_ms: float | None
    outcome: str | None
    status_code: int | None
    response_headers: tuple[tuple[str, str], ...]
    response: Body
    error: str | None
    replay_id: UUID | None  # the replay this attempt came after, if any


@dataclass(frozen=True, slots=True)
class Delivery:
    id: UUID  # also its idempotency key (webhook-id, Nats-Msg-Id, message_id)
    target: str
    status: str
    attempts: int
    budget_from: int  # attempts before its last replay: the retry schedule counts after
    due_at: dt.datetime
    last_outcome: str | None
    last_error: str | None
    ordering_key: str | None
    released_key: str | None
    route: int | None
    history: tuple[Attempt, ...]
    replays: tuple[ReplayMark, ...]


@dataclass(frozen=True, slots=True)
class EventDetail:
    id: UUID
    source: str
    event_type: str | None
    received_at: dt.datetime
    request: RawRequest
    verification: Verification
    matched_routes: tuple[RouteMatch, ...]
    unmatched_routes: tuple[RouteMatch, ...]
    deliveries: tuple[Delivery, ...]


@dataclass(frozen=True, slots=True)
class Rejected:
    id: int
    source: str
    received_at: dt.datetime
    status: int
    reason: str
    request: RawRequest


@dataclass(frozen=True, slots=True)
class TargetHealth:
    stats: TargetStats
    breaker: str  # closed | open | half-open
    success_ratio: float | None  # over the last hour's finished attempts
    blocks_on_dead: bool  # FIFO with on_dead: block: dead_keys are holding deliveries back


@dataclass(frozen=True, slots=True)
class ReplayDetail:
    replay: ReplayRecord
    affected: Page[ReplayedRow]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    id: UUID
    dry_run: bool
    counts: ReplayCounts


def encode_cursor(value: UUID | int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).rstrip(b"=").decode()


def decode_uuid_cursor(cursor: str | None) -> UUID | None:
    if not cursor:
        return None
    try:
        return UUID(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise AdminError("cursor: not a cursor this API gave out") from exc


def decode_int_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise AdminError("cursor: not a cursor this API gave out") from exc


def page_of(rows: Sequence[T], limit: int, key: UUID | int | None) -> Page[T]:
    more = len(rows) > limit
    return Page(tuple(rows[:limit]), encode_cursor(key) if more and key is not None else None)
