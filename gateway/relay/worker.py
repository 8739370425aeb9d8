"""The relay: claim due deliveries, send each through its lane, record what happened.

Any number of relays (in `hookgate serve` or `hookgate worker` processes) share one
database. Claims use FOR UPDATE SKIP LOCKED with a lease, per target, so no delivery is
in flight twice and no target's backlog hides another's; each claim is one statement
that also applies every target's limits (see `claim_deliveries`).

When to claim: a NOTIFY (new deliveries) wakes the loop; so does the earliest due time
the last claim reported or a retry this relay scheduled (a retry, the next token, a
breaker's cooldown end), and a finish that frees a FIFO key. Freed slots are gathered:
a saturated lane claims again once a half of it is free or `GATHER` seconds passed,
not once per finished delivery. The poll interval is the fallback.

Each relay holds a share of every target's concurrency (gateway/relay/shares.py) and
keeps its deliveries in flight within it; while its claim loop runs it also holds up to
a share's worth claimed ahead, sent as slots free up (gateway/relay/ahead.py). A slot
is free once the target has answered (the result is written in the background); a
failure keeps its slot until its result, and what it does to the breaker, is committed.

Results are written in batches (`GroupCommit`), each with what it says about its
targets' health, in one transaction: `_write_results` is the one place an attempt ends.

A reload swaps the lanes (`swap`): the next claim asks for the new set of targets under
their new limits, while each attempt finishes through the lane it was claimed with; a
lane replaced or removed is closed once its last attempt has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from gateway import logging as hg_logging
from gateway.alerting import Alerting, set_paused
from gateway.clock import Clock
from gateway.config import RelayConfig
from gateway.contract.message import SendResult
from gateway.contract.outcome import DELIVERED, Outcome
from gateway.errors import StorageError
from gateway.logging import Sampled, crash_site
from gateway.metrics import Metrics
from gateway.outbound import attempt_result, build_message
from gateway.relay.ahead import Ahead
from gateway.relay.health import ANSWERED, Breakers, health_of, limits_of
from gateway.relay.lanes import Lane
from gateway.relay.shares import Shares
from gateway.storage.batch import GroupCommit
from gateway.storage.store import AttemptResult, Claimed, Store
from gateway.tracing import Tracing

log = structlog.get_logger("hookgate.relay")
# A delivery whose worker keeps dying (a crash on this very message) is stopped, not looped.
MAX_INTERRUPTIONS = 10
# A lane that had more waiting than it could take claims again when half of it is free,
# or this many seconds after its first slot freed up, whichever comes first: each claim
# costs a round trip whatever its size, so a busy relay claims in batches.
GATHER = 0.002
# Claims under way at once: one more may start while one waits for its answer.
CLAIMS = 2
# Never sleep less than this for a due time (a frozen test clock would otherwise spin).
MIN_SLEEP = 0.001


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Relay:
    """Moves deliveries from the database to their targets."""

    def __init__(
        self,
        store: Store,
        lanes: Mapping[str, Lane],
        config: RelayConfig,
        clock: Clock,
        worker: str | None = None,
        rand: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
        alerting: Alerting | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.store = store
        self.alerting = alerting  # failure alerts, written with what caused them
        self.metrics = metrics or Metrics()  # a private registry when nobody scrapes
        self.tracing = tracing  # None: no spans, no traceparent added
        self.lanes = lanes
        self.config = config
        self.clock = clock
        # An outage fails every poll: one line per error and minute, with a count.
        self._claim_failures = Sampled(log, "relay_claim_failed", level="warning")
        self.worker = worker or worker_name()
        self.rand = rand
        self._busy = dict.fromkeys(lanes, 0)  # in flight per target (removed ones until done)
        self._answered: set[uuid.UUID] = set()  # slots freed, their results being written
        self._shares = Shares(store, self.worker)  # its part of each target's concurrency
        self._ahead = Ahead(store, self.worker, clock)  # claimed beyond it, not yet sent
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._more = False
        self._stopping = False
        self._loop: asyncio.Task[None] | None = None
        self._limits = {name: limits_of(lane) for name, lane in lanes.items()}
        self._breakers = Breakers()
        self._saturated: set[str] = set()  # lanes whose last claim left deliveries waiting
        # Lanes a reload replaced, by id, closed once no attempt uses them (nor a claim
        # under way, which may yet start attempts through them).
        self._users: dict[int, int] = {}  # id(lane) -> attempts in flight through it
        self._retired: dict[int, Lane] = {}
        self._claiming = 0  # claims under way
        self._reserved: dict[str, int] = {}  # what those claims asked for, per target
        self._recheck = False  # a claim overlapped another: claim again when both are done
        self._closing: set[asyncio.Task[None]] = set()
        self._soon: asyncio.TimerHandle | None = None
        self._next_due: dt.datetime | None = None
        # Attempt results share transactions, like ingest: one commit per batch, not per
        # send; one writer, so whatever ends while a batch commits goes in the next one.
        self._results: GroupCommit[AttemptResult, bool] = GroupCommit(
            self._write_results, writers=1
        )
        self._results_started = False

    def wake(self) -> None:
        """Look for due deliveries now (a NOTIFY arrived, a slot freed up, a key unblocked)."""
        self._wake.set()

    def swap(self, lanes: Mapping[str, Lane], config: RelayConfig) -> None:
        """Relay to `lanes` under `config` from the next claim on (a reload). Attempts in
        flight finish through the lane they were claimed with; a lane not in `lanes` is
        closed once the last of them has ended. A target no longer named is not claimed:
        its deliveries stay pending."""
        previous, self.lanes, self.config = self.lanes, lanes, config
        self._limits = {name: limits_of(lane) for name, lane in lanes.items()}
        self._saturated &= set(lanes)
        self._shares.forget()  # the new set of targets, under their new limits
        for name, lane in previous.items():
            if lanes.get(name) is not lane:
                self._retired[id(lane)] = lane
                self._ahead.give_back([name])
        self._close_idle()
        self.wake()  # a new target's deliveries are claimed at once

    async def close_lanes(self) -> None:
        """After `stop`: close every lane's resources, current and replaced."""
        for lane in self.lanes.values():
            self._retired[id(lane)] = lane
        self._close_idle()
        await asyncio.gather(*self._closing, return_exceptions=True)

    def alive(self) -> bool:
        """The claim loop runs (or has yet to start); False once it ended or is stopping."""
        return not self._stopping and (self._loop is None or not self._loop.done())

    def quotas(self) -> dict[str, int]:
        """How many each target may take now: what is free of this relay's share of its
        concurrency, at most a batch."""
        free = {name: self._free_of(name, lane) for name, lane in self.lanes.items()
                if name in self._shares.names()}  # fmt: skip
        return {name: min(n, self.config.batch_size) for name, n in free.items() if n > 0}

    def _free_of(self, name: str, lane: Lane) -> int:
        room, held = self._room(name, lane), self._ahead.count(name)
        free = self._cap(name, lane) + room - self._busy.get(name, 0)
        free -= self._reserved.get(name, 0) + held
        if free <= 0 and 0 < held <= room:
            # Full, with some claimed ahead: ask for one all the same, so that a claim
            # allowed none (paused, or its breaker tripped) gives back what it holds.
            return 1
        return free

    def _room(self, name: str, lane: Lane) -> int:
        """How many more than its share it may claim ahead (gateway/relay/ahead.py): a
        lane's worth while the claim loop runs, for a target with no rate limit and no
        ordering whose breaker this relay has not seen open; none otherwise."""
        if self._loop is None or self._loop.done() or self._stopping:
            return 0
        if lane.config.rate_limit or lane.config.ordering or name in self._breakers.open:
            return 0
        return min(self._cap(name, lane), self.config.batch_size)

    def _cap(self, name: str, lane: Lane) -> int:
        """How many of the target's deliveries this relay may have in flight: its share."""
        return self._shares.cap(name, lane.config.concurrency)

    def sleep_for(self) -> float:
        """Seconds until the earliest due time this relay knows of, at most the poll interval."""
        poll = self.config.poll_interval
        due = [d for d in (self._next_due, self._shares.soon(self._busy)) if d is not None]
        if not due:
            return poll
        wait = (min(due) - self.clock.now()).total_seconds()
        return min(poll, max(wait, MIN_SLEEP))

    async def run_once(self) -> int:
        """Claim what is due and start sending it; the number claimed."""
        if self._stopping:
            self._more = False
            return 0
        if self._claiming:
            # Another claim holds slots and may have read the database before what woke
            # this one was committed: look again once it is done.
            self._recheck = True
        self._claiming += 1  # a lane a reload replaces meanwhile stays open for what it takes
        try:
            return await self._claim_due()
        finally:
            self._claiming -= 1
            self._close_idle()

    async def _claim_due(self) -> int:
        now, lanes = self.clock.now(), self.lanes
        limits = {name: lane.config.concurrency for name, lane in lanes.items()}
        await self._shares.renew_if_due(now, limits, self._busy)
        if self.lanes is not lanes:  # a reload swapped the targets meanwhile: again
            self._shares.forget()
        quotas = self.quotas()
        if not quotas:
            self._more = False  # every lane is full: wait for a slot to free (it wakes us)
            return 0
        for name, quota in quotas.items():  # another claim meanwhile asks for the rest only
            self._reserved[name] = self._reserved.get(name, 0) + quota
        try:
            counts, allowed = await self._claim(quotas, now)
        finally:
            for name, quota in quotas.items():
                self._reserved[name] -= quota
        full = {name for name, quota in quotas.items() if counts[name] == quota}
        # Took all that the shared limits allowed, less than asked: other relays hold the
        # rest of its concurrency, so more may be waiting; claim again as slots free up.
        held = {name for name in quotas if 0 < counts[name] == allowed.get(name, -1)}
        self._saturated = (self._saturated - set(quotas)) | full | held
        self._more = any(name in self.quotas() for name in full)  # a batch's worth, not all
        return sum(counts.values())

    async def _claim(
        self, quotas: dict[str, int], now: dt.datetime
    ) -> tuple[dict[str, int], Mapping[str, int]]:
        """Claim up to `quotas` and start each delivery taken; how many per target, and
        how many the shared limits allowed each."""
        lanes = self.lanes  # those this claim asks for, whatever a reload swaps in meanwhile
        batch = await self.store.claim_batch(
            quotas, now, self.config.lease, self.worker, self._limits, self._shares.names()
        )
        # The claim saw the targets it was asked about; a due time learnt for a full lane
        # is kept until it passes.
        kept = self._next_due if self._next_due is not None and self._next_due > now else None
        self._next_due = min((d for d in (batch.next_due, kept) if d is not None), default=None)
        counts, allowed = dict.fromkeys(quotas, 0), batch.allowed or {}
        for item in batch.claimed:
            counts[item.target] += 1
            # Reloaded during the claim: the new lane, or the old one if the target is gone.
            lane = self.lanes.get(item.target, lanes[item.target])
            if self._busy.get(item.target, 0) >= self._cap(item.target, lane):
                self._ahead.hold(item, lane)  # beyond its share: sent as slots free up
            else:
                self._start(item, lane)
        # Allowed nothing: paused, or its breaker tripped (other relays' results).
        self._ahead.give_back(name for name in quotas if allowed.get(name) == 0)
        return counts, allowed

    async def run(self) -> None:
        """Claim and send until stopped: a claim on each wake, up to `CLAIMS` at once (slots
        that free up while a claim runs are claimed by the next, not after it)."""
        self._loop = asyncio.current_task()
        claims: set[asyncio.Task[None]] = set()
        self._wake.set()  # claim at once
        try:
            while not self._stopping:
                woken = False
                with contextlib.suppress(TimeoutError):
                    woken = await asyncio.wait_for(self._wake.wait(), self.sleep_for())
                self._wake.clear()
                if not woken and claims:
                    # A due time passed while a claim is under way: it tells what comes
                    # due next once it is done; wait for that rather than claim again.
                    await asyncio.wait(claims, return_when=asyncio.FIRST_COMPLETED)
                    continue
                while len(claims) >= CLAIMS:
                    await asyncio.wait(claims, return_when=asyncio.FIRST_COMPLETED)
                if self._stopping:
                    break
                task = asyncio.create_task(self._claim_round())
                claims.add(task)
                task.add_done_callback(claims.discard)
                await asyncio.sleep(0)  # it takes its quotas before the next one is asked
        finally:
            await asyncio.gather(*claims, return_exceptions=True)

    async def _claim_round(self) -> None:
        try:
            await self.run_once()
            self._claim_failures.flush()
        except StorageError as exc:
            self._claim_failures.hit(time.monotonic(), error=exc.message)
            self._more = False
        except Exception as exc:
            # A bug must not silently stop all delivery: log it and try again later.
            log.error("relay_loop_crashed", **crash_site(exc))
            self._more = False
        if self._recheck and not self._claiming:
            self._recheck = False
            self.wake()
        if self._more:
            self.wake()  # it took a full batch: more may be waiting

    async def drain(self) -> None:
        """Wait until every delivery this relay started has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def stop(self, grace: float) -> None:
        """Stop claiming, give in-flight sends `grace` seconds, then release the rest."""
        self._stopping = True
        if self._soon is not None:
            self._soon.cancel()
        self.wake()
        if self._loop is not None and not self._loop.done():
            # A claim may be under way: let it finish and start its sends, so every
            # delivery it took is among those finished or released below.
            await asyncio.wait([self._loop], timeout=grace)
        await self._ahead.close()  # never sent: back as they were, no attempt written
        pending = list(self._tasks.values())
        if pending:
            await asyncio.wait(pending, timeout=grace)
        unfinished = [delivery for delivery, task in self._tasks.items() if not task.done()]
        for delivery in unfinished:
            self._tasks[delivery].cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self._results.stop()
        if unfinished:
            await self.store.release(unfinished, self.clock.now(), self.worker)
            log.info("deliveries_released", count=len(unfinished))
        await self._shares.release()  # the other relays' at once

    async def _write_results(self, results: list[AttemptResult]) -> list[bool]:
        """Record attempts with what they say about each target's health (its breaker),
        in one transaction: a claim that sees a slot freed sees the breaker it opened."""
        now = self.clock.now()
        health = health_of(results, self._limits)
        if self.alerting and self.alerting.may_alert(results, health, self._breakers.open):
            finished = await self.alerting.finish(
                results,
                now,
                health,
                lambda done: self._breakers.changes(done.breakers, health, now),
            )
        else:
            finished = await self.store.finish_many(results, now, health)
        self._breakers.record(finished.breakers, health, now)
        self._ahead.give_back(self._breakers.open)
        self._after_results(results)
        return finished.kept

    def _after_results(self, results: list[AttemptResult]) -> None:
        """Remember retries' due times; wake at once if a finish frees a FIFO key."""
        for result in results:
            if result.next_status == "pending" and not result.interrupted:
                if self._next_due is None or result.next_due < self._next_due:
                    self._next_due = result.next_due
                    self.wake()  # the loop's sleep was set for a later time
            elif result.next_status != "pending" and _ordered(self.lanes.get(result.target)):
                self.wake()

    def saw_open_breakers(self, names: set[str]) -> None:
        """Breakers the database says are open (another relay may have opened them): the
        result that closes one is then known as a close here too."""
        self._breakers.saw_open(names & set(self.lanes))

    def _start(self, claimed: Claimed, lane: Lane) -> None:
        if not self._results_started:
            self._results.start()
            self._results_started = True
        self._busy[claimed.target] = self._busy.get(claimed.target, 0) + 1
        self._users[id(lane)] = self._users.get(id(lane), 0) + 1
        task = asyncio.create_task(self._deliver(claimed, lane))
        self._tasks[claimed.id] = task
        task.add_done_callback(lambda _: self._finished(claimed, lane))

    def _finished(self, claimed: Claimed, lane: Lane) -> None:
        self._tasks.pop(claimed.id, None)
        if claimed.id in self._answered:
            self._answered.discard(claimed.id)
        else:
            self._free(claimed)  # not freed when it was answered
        self._users[id(lane)] -= 1
        if not self._users[id(lane)]:
            del self._users[id(lane)]
            self._close_idle()

    def _answer_frees(self, claimed: Claimed, result: SendResult) -> None:
        """The target answered: its slot is free now, while the result is written."""
        if result.outcome in ANSWERED:
            self._answered.add(claimed.id)
            self._free(claimed)

    def _free(self, claimed: Claimed) -> None:
        """One slot of the delivery's target is free: send one claimed ahead, and claim
        again when enough are."""
        name = claimed.target
        self._busy[name] -= 1
        current = self.lanes.get(name)
        if current is None:  # removed by a reload: nothing more to claim for it
            if not self._busy[name]:
                del self._busy[name]
            return
        self._send_ahead(name, current)
        if name not in self._saturated:
            return  # it took all that was due: new work comes with a NOTIFY or a due time
        cap = self._cap(name, current)
        free = cap + self._room(name, current) - self._busy[name] - self._ahead.count(name)
        if free >= max(1, min(self.config.batch_size, cap) // 2):
            self.wake()
        elif self._soon is None:
            self._soon = asyncio.get_running_loop().call_later(GATHER, self._gathered)

    def _send_ahead(self, name: str, lane: Lane) -> None:
        """Start what is held ahead for `name` while its share has room (given back
        instead once the relay stops or has seen the target's breaker open)."""
        if self._stopping or name in self._breakers.open:
            self._ahead.give_back([name])
            return
        while self._busy.get(name, 0) < self._cap(name, lane):
            held = self._ahead.take(name)
            if held is None:
                return
            self._start(*held)

    def _gathered(self) -> None:
        self._soon = None
        self.wake()

    def _close_idle(self) -> None:
        """Close the replaced lanes no attempt uses any more (not while a claim runs)."""
        if self._claiming:
            return
        for key, lane in list(self._retired.items()):
            if key not in self._users:
                del self._retired[key]
                task = asyncio.create_task(_close(lane), name=f"close-lane-{lane.config.name}")
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def _deliver(self, claimed: Claimed, lane: Lane) -> None:
        structlog.contextvars.bind_contextvars(
            event_id=str(claimed.event_id),
            delivery_id=str(claimed.id),
            attempt=claimed.attempt,
            target=claimed.target,
        )
        tracing = self.tracing
        if tracing is None:
            await self._attempt(lane, claimed, None)
            return
        span = tracing.attempt(claimed.traceparent, claimed.headers)
        try:
            await self._attempt(lane, claimed, span)
        finally:
            tracing.end(span)  # if cut short (ended with its outcome otherwise)

    async def _attempt(self, lane: Lane, claimed: Claimed, span: Any) -> None:
        started = time.perf_counter()
        if claimed.interruptions >= MAX_INTERRUPTIONS:
            result = SendResult(
                Outcome.LEASE_EXPIRED,
                error=f"not sent again: {claimed.interruptions} attempts were cut short",
            )
        else:
            result = await self._send(lane, claimed, span)
        duration_ms = (time.perf_counter() - started) * 1000
        now = self.clock.now()
        if result.outcome is Outcome.GONE:
            await self._pause_gone(claimed.target, result, now)
        status, due = self._next_step(lane, claimed, result, now)
        self._measure(claimed, result, status, duration_ms, now)
        if span is not None and self.tracing is not None:
            self.tracing.attempted(span, claimed, result, status)
        attempt = attempt_result(claimed, result, duration_ms, status, due, self.worker)
        self._answer_frees(claimed, result)
        try:
            kept = await self._results.write(attempt)
        except StorageError as exc:
            # The lease runs out and another claim sends it again: at least once, never lost.
            log.error("delivery_record_failed", error=exc.message)
            return
        _log_attempt(result, status, due, now, duration_ms, kept)

    def _measure(
        self, claimed: Claimed, result: SendResult, status: str, ms: float, now: dt.datetime
    ) -> None:
        self.metrics.attempt(claimed.target, result.outcome.value, ms / 1000)
        if status == "delivered":
            self.metrics.delivered(claimed.target, claimed.received_at, now)
        elif status == "dead":
            self.metrics.went_dead(claimed.target)

    async def _send(self, lane: Lane, claimed: Claimed, span: Any = None) -> SendResult:
        message = build_message(claimed, lane.config, self.clock.now())
        if span is not None and self.tracing is not None:  # the attempt's own traceparent
            message = replace(message, headers=self.tracing.outgoing(message.headers, span))
        try:
            async with asyncio.timeout(lane.config.timeout):
                return await lane.send_for(claimed.route)(message)
        except TimeoutError:
            return SendResult(Outcome.TIMEOUT, error=f"no answer within {lane.config.timeout}s")
        except Exception as exc:
            # Its type, not its message (which may quote the message it was sending): the
            # attempt's error is logged (delivery_*) and shown in the inspector too.
            site = crash_site(exc)
            log.error("target_crashed", **site)
            return SendResult(Outcome.TARGET_ERROR, error=f"the target crashed: {site['error']}")

    async def _pause_gone(self, target: str, result: SendResult, now: dt.datetime) -> None:
        """A 410 pauses the whole target: its deliveries wait, keeping their attempts."""
        snippet = result.body[:200].decode("utf-8", "replace")
        reason = f"the target answered 410 Gone: {snippet}".strip()
        by = f"relay {self.worker}"
        try:
            await set_paused(
                self.store, self.alerting, target, True, reason, now, by, result.status
            )
        except StorageError as exc:
            log.error("target_pause_failed", error=exc.message)
            return
        self._ahead.give_back([target])
        log.warning("target_paused", reason=reason)

    def _next_step(
        self, lane: Lane, claimed: Claimed, result: SendResult, now: dt.datetime
    ) -> tuple[str, dt.datetime]:
        if result.outcome in DELIVERED:
            return "delivered", now
        if result.outcome is Outcome.GONE:
            return "pending", now  # claimed again once the target is resumed
        if claimed.interruptions >= MAX_INTERRUPTIONS:
            return "dead", now
        # Attempts cut short do not count, nor do those before a replay (a fresh budget).
        answered = claimed.attempt - claimed.interruptions - claimed.budget_from
        delay = lane.config.retry.next_delay(
            answered, result.outcome, result.retry_after, self.rand
        )
        if delay is None:
            return "dead", now
        return "pending", now + dt.timedelta(seconds=delay)


def _ordered(lane: Lane | None) -> bool:
    return lane is not None and lane.config.ordering is not None


async def _close(lane: Lane) -> None:
    try:
        await lane.close()
    except Exception as exc:  # a plugin's own: logged, and the other lanes still close
        log.error("target_close_failed", target=lane.config.name, **crash_site(exc))
    else:
        log.debug("target_closed", target=lane.config.name)


def _log_attempt(
    result: SendResult,
    status: str,
    due: dt.datetime,
    now: dt.datetime,
    duration_ms: float,
    kept: bool,
) -> None:
    event = {
        "delivered": "delivery_succeeded",
        "dead": "delivery_dead",
        "pending": "delivery_retry_scheduled",
    }[status]
    fields: dict[str, object] = {
        "outcome": str(result.outcome),
        "status_code": result.status,
        "duration_ms": round(duration_ms, 2),
        "error": result.error,
        "retry_in_s": round((due - now).total_seconds(), 1) if status == "pending" else None,
    }
    # One line per attempt, like ingest's per request: the same direct way out.
    hg_logging.info(log, event if kept else "delivery_lease_lost", fields)
