"""Group commit: concurrent writers share transactions.

Callers queue an item; each of a few writer tasks takes whatever is queued (bounded by
rows and bytes) and writes it with one statement. Under load, everything that arrived
while the previous write ran goes in the next one; at rest a lone item is written at
once. Each caller is answered when its own batch commits. When the database is
unavailable the whole batch fails; when it rejects the batch's data, each item is
retried alone so one bad row fails only its own caller.

Ingest uses it for events (`for_ingest`), the relay for attempt results.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import structlog

from gateway.config import IngestConfig
from gateway.errors import StorageError, StorageUnavailable
from gateway.logging import Sampled, crash_site
from gateway.storage.notify import Notifier
from gateway.storage.store import EventRecord, Store, Stored

log = structlog.get_logger("hookgate.storage")

T = TypeVar("T")
R = TypeVar("R")


class _Pending(NamedTuple, Generic[T, R]):
    item: T
    done: asyncio.Future[R]


class GroupCommit(Generic[T, R]):
    """Writes queued items in batches; `write` returns the item's result once committed."""

    def __init__(
        self,
        write_many: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        writers: int = 4,
        max_rows: int = 256,
        max_bytes: int = 8 * 1024 * 1024,
        size: Callable[[T], int] = lambda _: 0,
        on_commit: Callable[[list[T]], None] | None = None,
    ) -> None:
        self._write_many = write_many
        self._writer_count = writers
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._size = size
        self._on_commit = on_commit
        self._queue: collections.deque[_Pending[T, R]] = collections.deque()
        self._ready = asyncio.Event()
        self._writers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        # During an outage every batch fails: one line per error and minute, with a count.
        self._failures = Sampled(log, "batch_write_failed", level="warning")

    @classmethod
    def for_writes(
        cls,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        writers: int = 1,
        size: Callable[[T], int] = lambda _: 0,
    ) -> GroupCommit[T, None]:
        """For writes that give nothing back per item (logs and records kept on the side)."""

        async def write_many(items: list[T]) -> list[None]:
            await write(items)
            return [None] * len(items)

        return GroupCommit(write_many, writers=writers, size=size)

    @classmethod
    def for_ingest(
        cls,
        store: Store,
        config: IngestConfig,
        notifier: Notifier | None = None,
        observe: Callable[[int, float], None] | None = None,
    ) -> GroupCommit[EventRecord, Stored]:
        """Events and their deliveries; the relays are woken after each commit. `observe`
        is told each committed batch's rows and seconds (the metrics)."""

        async def write_many(records: list[EventRecord]) -> list[Stored]:
            started = time.perf_counter()
            stored = await _insert_deduplicated(store, records)
            if observe is not None:
                observe(len(records), time.perf_counter() - started)
            return stored

        def committed(records: list[EventRecord]) -> None:
            if notifier is not None and any(record.deliveries for record in records):
                notifier.poke()

        return GroupCommit(
            write_many,
            writers=config.writers,
            max_rows=config.max_batch_rows,
            max_bytes=config.max_batch_bytes,
            size=lambda record: len(record.body),
            on_commit=committed,
        )

    async def write(self, item: T) -> R:
        """Queue `item` and wait for its commit; raises `StorageError` if it failed."""
        if self._closing:
            raise StorageUnavailable("shutting down")
        done: asyncio.Future[R] = (self._loop or asyncio.get_running_loop()).create_future()
        self._queue.append(_Pending(item, done))
        self._ready.set()
        return await done

    def submit(self, item: T) -> None:
        """Queue `item` without waiting; a failure is logged, not raised."""
        if self._closing:
            return
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_consume)
        self._queue.append(_Pending(item, done))
        self._ready.set()

    def start(self) -> None:
        # Its loop, known once: asking for the running loop per write is a getpid() call
        # each on Python 3.11.
        self._loop = asyncio.get_running_loop()
        self._writers = [asyncio.create_task(self._run()) for _ in range(self._writer_count)]

    async def stop(self) -> None:
        """Write everything queued, answer every caller, then stop the writers."""
        self._closing = True
        self._ready.set()
        await asyncio.gather(*self._writers, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            batch = self._take()
            if batch:
                await self._commit(batch)
            elif self._closing:
                return

    def _take(self) -> list[_Pending[T, R]]:
        batch: list[_Pending[T, R]] = []
        size = 0
        while self._queue and len(batch) < self._max_rows:
            size += self._size(self._queue[0].item)
            if batch and size > self._max_bytes:
                break
            batch.append(self._queue.popleft())
        if not self._queue and not self._closing:
            self._ready.clear()
        return batch

    async def _commit(self, batch: list[_Pending[T, R]]) -> None:
        items = [pending.item for pending in batch]
        try:
            results = await self._write_many(items)
        except StorageError as exc:
            if isinstance(exc, StorageUnavailable) or len(batch) == 1:
                self._failures.hit(time.monotonic(), error=exc.message)
                _fail(batch, exc)
            else:
                for pending in batch:  # find the row the database refuses; the others go in
                    await self._commit([pending])
            return
        except Exception as exc:
            log.error("batch_write_crashed", rows=len(batch), **crash_site(exc))
            _fail(batch, StorageError(f"batch write failed: {type(exc).__name__}"))
            return
        self._failures.flush()  # the outage is over: say how many batches it cost
        if self._on_commit is not None:
            self._on_commit(items)
        for pending, result in zip(batch, results, strict=True):
            if not pending.done.done():
                pending.done.set_result(result)


async def _insert_deduplicated(store: Store, records: list[EventRecord]) -> list[Stored]:
    """Insert; a record whose dedupe key is taken (earlier, or earlier in this batch)
    is answered with the event holding the key."""
    first: dict[tuple[str, str], EventRecord] = {}
    for record in records:
        if record.dedupe_key is not None:
            first.setdefault((record.source, record.dedupe_key), record)

    def held_by_another(record: EventRecord) -> bool:
        return (
            record.dedupe_key is not None and first[record.source, record.dedupe_key] is not record
        )

    refused = await store.insert_events([r for r in records if not held_by_another(r)])
    duplicates = [r for r in records if r.id in refused or held_by_another(r)]
    duplicate_ids = {r.id for r in duplicates}
    keys = list({(r.source, r.dedupe_key or "") for r in duplicates})
    originals = await store.dedupe_originals(keys) if keys else {}
    results = []
    for record in records:
        if record.id not in duplicate_ids:
            results.append(Stored(record.id))
            continue
        original = originals.get((record.source, record.dedupe_key or ""))
        if original is None:  # its holder vanished between the two statements: retry later
            raise StorageUnavailable("duplicate of an event that is no longer known")
        results.append(Stored(original, duplicate=True))
    return results


def _consume(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("background_write_failed", error=str(done.exception()))


def _fail(batch: Sequence[_Pending[T, R]], error: StorageError) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(type(error)(error.message))
