"""The `redis-stream` target: XADD each message to a Redis stream.

Config (the client is redis-py: ``pip install 'hookgate[redis]'``)::

    targets:
      events:
        type: redis-stream
        url: redis://redis.internal:6379/0   # rediss:// for TLS, unix:///path?db=0 for a socket
        stream: "hooks:{source}"            # {source} and {target} are expanded per message

redis-py's own URL query options apply, e.g. ``?socket_connect_timeout=2&client_name=x``.

Each attempt adds one entry whose fields are ``event_id``, ``delivery_id`` (the
idempotency key), ``attempt``, ``source``, ``target``, ``type`` (empty when unknown),
``received_at`` (ISO 8601), ``headers`` (JSON ``[[name, value], ...]`` of the outgoing
headers) and ``body`` (the provider's bytes, untouched).

Acknowledgement: XADD answering with an entry id means the server holds the entry, so
the attempt is ACKED and the entry id is kept as the answer. That is exactly as durable
as the Redis server is configured to be: with ``appendonly no`` a restart loses what the
last snapshot did not catch, and with a ``maxmemory-policy`` other than ``noeviction``
Redis may evict the whole stream. Under ``noeviction`` a full Redis refuses the XADD
(TARGET_ERROR) and the relay retries: back-pressure rather than loss.

No trimming, deliberately: there is no MAXLEN or MINID option. Trimming by length drops
the oldest entries whether or not a consumer has read them, which is the silent loss of a
backlog that hookgate exists to prevent; consumers XDEL or XTRIM what they have finished.

At least once: a retry after a lost reply, or a replay, adds another entry with the same
``delivery_id``; consumers deduplicate on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import orjson

from gateway.plugin import (
    Message,
    Outcome,
    Resources,
    Section,
    SendResult,
    show,
)

try:
    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import (
        AuthenticationError,
        AuthorizationError,
        ReadOnlyError,
        RedisError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if TYPE_CHECKING:
        from redis.typing import EncodableT, FieldT
except ImportError:  # pragma: no cover - exercised by patching `redis` to None
    redis = None  # type: ignore[assignment]

_SCHEMES = frozenset({"redis", "rediss", "unix"})
_PLACEHOLDERS = frozenset({"source", "target"})
CONNECT_TIMEOUT = 5.0


def _client_options() -> dict[str, Any]:
    # The relay owns retries (each one recorded) and its `timeout` bounds the whole send,
    # so the client neither retries behind our back nor has a read timeout of its own.
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": None,
        "retry": Retry(NoBackoff(), 0),
        "client_name": "hookgate",
        # RESP2: under RESP3 redis-py 8 turns on maintenance push notifications and then
        # stops checking a pooled connection before reuse, so one the server has closed
        # (a restart, CLIENT KILL, an idle timeout) fails its next send.
        "protocol": 2,
    }


@dataclass(frozen=True, slots=True)
class RedisStreamOptions:
    url: str
    stream: str  # a str.format template over {source} and {target}


class RedisStreamTarget:
    """One redis-py client (and its connection pool) per target, made on first send."""

    def __init__(self, options: RedisStreamOptions) -> None:
        self.options = options
        self._client: redis.Redis | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, message: Message) -> SendResult:
        stream = self.options.stream.format(source=message.source, target=message.target)
        client = await self._connected()
        try:
            entry_id = await client.xadd(stream, entry_fields(message))
        except (RedisError, OSError) as exc:
            outcome = classify_error(exc)
            if outcome is not Outcome.TARGET_ERROR or isinstance(exc, ReadOnlyError):
                await self._drop_idle(client)
            return SendResult(outcome, error=f"{type(exc).__name__}: {exc}")
        entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        return SendResult(
            Outcome.ACKED, body=entry.encode(), extra={"stream": stream, "entry_id": entry}
        )

    async def aclose(self) -> None:
        """Close the client and every pooled connection."""
        async with self._lock:
            client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _connected(self) -> redis.Redis:
        async with self._lock:
            if self._client is None:
                # A blocking pool: a send beyond `max_connections` (100 unless the URL says
                # otherwise) waits for a free connection, within the relay's timeout,
                # instead of failing at once with "Too many connections".
                pool = redis.BlockingConnectionPool.from_url(
                    self.options.url, timeout=None, **_client_options()
                )
                self._client = redis.Redis.from_pool(pool)
            return self._client

    async def _drop_idle(self, client: redis.Redis) -> None:
        # After a restart or failover the other idle connections are stale too (or talk to
        # a demoted replica): drop them so the next attempt dials afresh. Connections still
        # in use by concurrent sends are left to finish.
        # Closing a dead socket may fail; it is dropped from the pool either way.
        with contextlib.suppress(RedisError, OSError):
            await client.connection_pool.disconnect(inuse_connections=False)


def entry_fields(message: Message) -> dict[FieldT, EncodableT]:
    """The stream entry for one attempt; field order is kept by Redis."""
    return {
        "event_id": str(message.event_id),
        "delivery_id": message.idempotency_key,
        "attempt": str(message.attempt),
        "source": message.source,
        "target": message.target,
        "type": message.event_type or "",
        "received_at": message.received_at.isoformat(),
        "headers": orjson.dumps(message.headers),
        "body": message.body,
    }


def classify_error(exc: BaseException) -> Outcome:
    """Which failure this was: the network on the way, or Redis saying no."""
    if isinstance(exc, RedisTimeoutError):
        return Outcome.TIMEOUT
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return Outcome.TARGET_ERROR
    if isinstance(exc, RedisConnectionError | OSError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, socket.gaierror):
            return Outcome.DNS_ERROR
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            return Outcome.TLS_ERROR
        return Outcome.CONNECT_ERROR
    return Outcome.TARGET_ERROR


class RedisStreamPlugin:
    kind: Literal["target"] = "target"
    name = "redis-stream"

    def parse(self, section: Section) -> RedisStreamOptions:
        if redis is None:
            section.fail("needs the redis package: pip install 'hookgate[redis]'", "type")
        url = section.get("url", _url, "redis://127.0.0.1:6379/0")
        stream = section.get("stream", _stream_template, fallback="")
        return RedisStreamOptions(url=url, stream=stream)

    def create(self, options: Any, resources: Resources) -> RedisStreamTarget:
        return RedisStreamTarget(options)


def _url(value: object) -> str:
    # Errors name the part that is wrong, never the URL itself: it may hold a password.
    if not isinstance(value, str):
        raise ValueError(f"expected a redis:// URL, got {show(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("expected a redis://host:port/db URL; the port is not valid") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            f"expected a redis://, rediss:// or unix:// URL, got scheme {show(parts.scheme)}"
        )
    if parts.scheme != "unix" and parts.path.strip("/") and not parts.path[1:].isdigit():
        raise ValueError(f"expected a database number after the host, got {show(parts.path)}")
    if redis is not None:
        try:  # builds the client's connection settings without connecting
            pool = redis.BlockingConnectionPool.from_url(value, **_client_options())
            pool.connection_class(**pool.connection_kwargs)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a URL redis-py accepts: {exc}") from None
    return value


def _stream_template(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a stream name, got {show(value)}")
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"{exc} in {show(value)}; write {{{{ or }}}} for a brace") from None
    for _, name, spec, conversion in fields:
        if name is not None and (name not in _PLACEHOLDERS or spec or conversion):
            written = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ValueError(
                f"unknown placeholder {{{written}}} in {show(value)}; "
                "expected {source} or {target} ({{ or }} for a literal brace)"
            )
    return value


plugin = RedisStreamPlugin()

__all__ = ["RedisStreamOptions", "RedisStreamTarget", "classify_error", "entry_fields", "plugin"]
