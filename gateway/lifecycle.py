"""Applying retention and erasure requests: config and CLI options in, a purge pass out.

The background task of every ``serve`` (and ``hookgate purge``) runs `retention_pass`;
``hookgate purge --source/--before/--match`` runs `erase`. Both log one line and leave one
audit row in ``hookgate.purges``; a ``--match`` value is kept there and in the log only as
its SHA-256, so the audit trail does not keep the personal data it erased.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import structlog

from gateway.body import parsed
from gateway.clock import Clock
from gateway.config import Config
from gateway.errors import StorageError
from gateway.retention import RetentionPolicy
from gateway.storage.purge import Audit, Cutoff, Decide, PurgeCounts, Purger

log = structlog.get_logger("hookgate.lifecycle")


@dataclass(frozen=True, slots=True)
class Match:
    """``json:customer.email=value`` or ``header:X-Shop-Domain=value``: equal, as text."""

    kind: str
    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Match:
        where, sep, value = text.partition("=")
        kind, _, key = where.partition(":")
        if not sep or kind not in {"json", "header"} or not key:
            raise ValueError(f"expected json:<field.path>=<value> or header:<Name>=<value>, "
                             f"got {text!r}")  # fmt: skip
        return cls(kind, key, value)

    def hashed(self) -> str:
        digest = hashlib.sha256(self.value.encode()).hexdigest()
        return f"{self.kind}:{self.key}=sha256:{digest}"

    def test(self, headers: Sequence[tuple[str, str]], body: bytes) -> bool:
        if self.kind == "header":
            name = self.key.lower()
            return any(k.lower() == name and v == self.value for k, v in headers)
        return _json_text(body, self.key) == self.value


def _json_text(body: bytes, path: str) -> str | None:
    value = parsed(body)
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


@dataclass(frozen=True, slots=True)
class Erasure:
    """What ``hookgate purge --source S --before DATE --match ...`` asks to erase."""

    before: dt.datetime
    source: str | None = None
    matches: tuple[Match, ...] = ()

    def decide(self) -> Decide:
        """Every match must hold (no match: every event of the selection)."""
        return lambda headers, body: all(m.test(headers, body) for m in self.matches)

    def criteria(self) -> dict[str, object]:
        return {
            "source": self.source,
            "before": self.before.isoformat(),
            "match": [m.hashed() for m in self.matches],
        }


def to_cutoff(policy: RetentionPolicy, now: dt.datetime) -> Cutoff:
    def before(seconds: float) -> dt.datetime:
        return now - dt.timedelta(seconds=seconds)

    dead = None if policy.dead is None else before(policy.dead)
    return Cutoff(before(policy.delivered), dead, before(policy.rejected))


async def retention_pass(
    purger: Purger, config: Config, now: dt.datetime, actor: str, dry_run: bool = False
) -> PurgeCounts | None:
    """One retention pass now (after making the day partitions ahead); None when another
    replica's pass was running."""
    try:
        if made := await purger.ensure_partitions(now):
            log.info("partitions_created", partitions=made)
    except StorageError as exc:  # a lock not granted in time: the next pass makes them
        log.warning("partitions_not_created", error=exc.message)
    retention = config.retention
    per_source = {name: to_cutoff(retention.policy(name), now) for name in config.sources}
    audit = Audit(now, "retention", actor, {"policy": "retention"}, dry_run)
    counts = await purger.retention(per_source, to_cutoff(retention.default, now), now, audit)
    if counts:
        log.info("retention_purged", dry_run=dry_run, **_fields(counts))
    if not dry_run:
        try:  # for three passes' time: if housekeeping stops, claims read every day again
            await purger.raise_open_floor(now, 3 * retention.interval)
        except StorageError as exc:  # the floor stays where it was: never too high
            log.warning("open_floor_not_raised", error=exc.message)
    return counts


async def erase(
    purger: Purger, erasure: Erasure, now: dt.datetime, actor: str, dry_run: bool = False
) -> PurgeCounts:
    """Erase what `erasure` selects (never an event with a delivery still open)."""
    audit = Audit(now, "erasure", actor, erasure.criteria(), dry_run)
    counts = await purger.erase(erasure.source, erasure.before, erasure.decide(), audit)
    log.info("events_erased", dry_run=dry_run, actor=actor, criteria=orjson.dumps(
        audit.criteria).decode(), **_fields(counts))  # fmt: skip
    return counts


def _fields(counts: PurgeCounts) -> dict[str, int]:
    return {
        "events": counts.events,
        "kept_open": counts.kept_open,
        "rejected": counts.rejected,
        "dedupe_keys": counts.dedupe_keys,
        "days_dropped": counts.days,
    }


async def purge_forever(purger: Purger, config: Config, clock: Clock, actor: str) -> None:
    """The background retention task: a pass every ``retention.interval``."""
    while True:
        try:
            await retention_pass(purger, config, clock.now(), actor)
        except StorageError as exc:
            log.warning("purge_failed", error=exc.message)
        await asyncio.sleep(config.retention.interval)
