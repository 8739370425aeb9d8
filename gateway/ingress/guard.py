"""A source's protections at run time: its rate limiter and verifier, what of its
requests is stored redacted, whether its bodies are inflated for routing, and the
capped log of the requests they refuse."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from gateway.clock import Clock
from gateway.config import Config, RejectedConfig
from gateway.contract.verify import Credentials, Verifier
from gateway.errors import IngressError
from gateway.ingress.ratelimit import Limiter
from gateway.ingress.redact import Redaction
from gateway.logging import Sampled
from gateway.plugins import Registry, Resources
from gateway.sources import SourceConfig
from gateway.storage.batch import GroupCommit
from gateway.storage.store import RejectedRecord, Store

log = structlog.get_logger("hookgate.ingress")
SNIPPET = 4096


@dataclass(frozen=True, slots=True)
class Guard:
    limiter: Limiter
    verifier: Verifier | None
    reads_body: bool = False  # routing looks into the JSON: a compressed body is inflated
    # What is stored of its requests' credentials.
    redaction: Redaction = field(default_factory=Redaction)
    # The verifier's own credential inputs: a proxy forward leaves them out.
    own: Redaction = field(default_factory=Redaction)


def build_guards(config: Config, registry: Registry, resources: Resources) -> dict[str, Guard]:
    return {
        name: _guard(source, registry, resources, reads_body(config, source))
        for name, source in config.sources.items()
    }


def _guard(source: SourceConfig, registry: Registry, resources: Resources, reads: bool) -> Guard:
    verifier = None
    if source.verify is not None:
        plugin = registry.verifier(source.verify.type)
        assert plugin is not None  # the config named an installed verifier
        verifier = plugin.create(source.verify.options, resources)
    limiter = Limiter(source.rate_limit, source.peer_rate_limit)
    own = verifier_credentials(source, registry)
    return Guard(limiter, verifier, reads, _stored(source, own), own)


def verifier_credentials(source: SourceConfig, registry: Registry) -> Redaction:
    """What the source's verifier declares as its credential inputs (api-key's header or
    query parameter, basic auth's Authorization, ...): hookgate's own, not the receiver's."""
    credentials = Credentials()
    plugin = registry.verifier(source.verify.type) if source.verify is not None else None
    if plugin is not None and source.verify is not None:
        declared = getattr(plugin, "credentials", None)  # optional for third-party verifiers
        credentials = declared(source.verify.options) if declared else credentials
    return Redaction.of(credentials.headers, credentials.query)


def redaction_for(
    source: SourceConfig, registry: Registry, always: Iterable[str] = ()
) -> Redaction:
    """What of the source's requests is a credential: its redact_headers, what its verifier
    declares, and `always` (the admin surface adds the default headers whatever the list)."""
    return _stored(source, verifier_credentials(source, registry), always)


def _stored(source: SourceConfig, own: Redaction, always: Iterable[str] = ()) -> Redaction:
    return Redaction.of((*source.redact_headers, *own.headers, *always), own.query)


def reads_body(config: Config, source: SourceConfig) -> bool:
    """Whether storing this source's events needs the body's JSON: a `json:` event type,
    dedupe or ordering key, or a `json:` filter on one of its routes or their targets."""
    extractors = [source.event_type, source.dedupe.key if source.dedupe else None]
    routes = [route for route in config.routes if route.source == source.name]
    targets = [config.targets[t] for route in routes for t in route.targets if t in config.targets]
    extractors += [target.ordering.key for target in targets if target.ordering]
    filters = [route.filter for route in routes] + [target.filter for target in targets]
    return any(e is not None and e.kind == "json" for e in extractors) or any(
        f.reads_body for f in filters
    )


class Rejections:
    """Records refused requests, at most `max_per_minute` per source; counts the rest.

    The log says the same: one `request_rejected` line per source, status and reason
    per minute, the first at once, the rest as one line with their count.
    """

    def __init__(self, store: Store, config: RejectedConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._writer: GroupCommit[RejectedRecord, None] = GroupCommit.for_writes(
            store.insert_rejected, size=lambda r: len(r.body)
        )
        self._minute = ""
        self._counts: Counter[str] = Counter()
        self._lines = Sampled(log, "request_rejected")
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer.start()
        self._ticker = asyncio.create_task(self._tick_forever(), name="rejected-log")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self._lines.flush()
        await self._writer.stop()

    async def _tick_forever(self, every: float = 5.0) -> None:
        while True:  # a flood's count is logged when its minute is over, even if it stopped
            await asyncio.sleep(every)
            self._lines.tick(self._clock.now().timestamp())

    def record(self, row: RejectedRecord, error: IngressError) -> None:
        minute = row.received_at.strftime("%Y%m%d%H%M")
        if minute != self._minute:
            self._report_dropped()
            self._minute, self._counts = minute, Counter()
        self._counts[row.source] += 1
        now = row.received_at.timestamp()
        self._lines.hit(now, source=row.source, status=error.status, reason=row.reason)
        if self._counts[row.source] <= self._config.max_per_minute:
            self._writer.submit(row)

    def _report_dropped(self) -> None:
        for source, count in self._counts.items():
            if count > self._config.max_per_minute:
                log.warning(
                    "rejected_not_recorded",
                    source=source,
                    count=count - self._config.max_per_minute,
                )
