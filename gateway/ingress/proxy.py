"""Proxy mode: forward a verified request to one target and answer with the target's answer.

Slack slash commands, Twilio TwiML and Discord interactions need the answer itself, not a
202. A source with ``mode: proxy`` gives them the answer of one http target:

    sources:
      slack-commands:
        verify: {type: slack, secret: ${SLACK_SIGNING_SECRET}}
        mode: proxy                      # the default is store: 202, then the relay
        proxy:
          target: commands               # an http target; its middleware and sign: apply
          timeout: 2500ms                # default 5s
          fallback: {status: 200, body: "Busy, try again.", content_type: text/plain}

After the checks every source makes (404, 405, 403, 429, 413, 401; a handshake is still
answered by the verifier and never forwarded):

1. The request is stored as an event with no deliveries before anything is forwarded, so
   nothing reaches the target unrecorded, and a database outage is the usual 503. The
   relay never sends it, and no route may start at a proxy source (a config error).
2. It is forwarded exactly as the relay would send it (`build_message`: the target's
   forwarded headers, the X-Hookgate-* identity headers, Idempotency-Key = the delivery
   id of (event, target)), through the target's middleware chain, so ``sign:`` applies;
   never with the verifier's own credential inputs (an api-key header), checked already.
   `proxy.timeout` bounds it all, from the first middleware to the answer's last byte.
3. Any answer is passed back as it is, 4xx and 5xx included: the status, the headers
   minus hop-by-hop ones (and minus Server and Date, which are this hop's), and the
   whole body, up to server.max_body. No answer (timeout, refused connection, DNS or TLS
   failure, an answer over the limit, a middleware that failed) gets `proxy.fallback`,
   or a 502 with a JSON error when there is none.
4. What the target answered (outcome, status, a few headers, size, duration, error) goes
   on the request's canonical log line as ``proxy_*`` fields (the body is not logged),
   and is stored as the event's delivery to the target, already finished (delivered or
   dead), with its one attempt and the first 4 KiB of the answer: no relay claims it.

Forwards are not counted against the target's `concurrency`: the provider's request
rate, bounded by the source's `rate_limit`, is what drives them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import replace
from uuid import UUID

import structlog
from aiohttp import web
from multidict import CIMultiDict

from gateway import keys, outbound
from gateway.contract.message import Message, Send, SendResult
from gateway.contract.outcome import DELIVERED, Outcome
from gateway.ids import delivery_id
from gateway.ingress.live import Snapshot
from gateway.ingress.request import to_record
from gateway.logging import crash_site
from gateway.middleware import log_fields
from gateway.outbound import attempt_result, build_message
from gateway.plugins import Registry, Resources
from gateway.sources import ProxyConfig, ProxyFallback, SourceConfig
from gateway.storage.store import Claimed, EventRecord, ProxyAnswer
from gateway.targets import TargetConfig
from gateway.tracing import Ingest

log = structlog.get_logger("hookgate.proxy")
# Describe the hop between the target and us, not the answer; aiohttp sets its own.
_NOT_PASSED_BACK = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te", "trailer",
     "transfer-encoding", "upgrade", "content-length", "server", "date"}
)  # fmt: skip
_LOGGED_HEADERS = frozenset({"content-type", "location", "retry-after", "x-request-id"})


async def answer(
    request: web.Request,
    live: Snapshot,
    source: SourceConfig,
    proxy: ProxyConfig,
    body: bytes,
    now: dt.datetime,
    caller: str | None,
    traced: Ingest | None = None,
) -> web.Response:
    """Store the verified request, forward it, and answer with what the target answered
    (with `traced`, in a `forward` span whose traceparent the target gets)."""
    app = request.app
    config = live.config
    target = config.targets[proxy.target]
    record = to_record(request, source, body, now, config, caller, relay=False)
    fields = log_fields(request)
    fields.update(event_type=record.event_type, size=len(body))  # its source is there already
    # Stored redacted; forwarded now as received (the target gets what it is sent), less
    # the verifier's credential inputs: hookgate's own, checked, of no use to the target.
    guard = live.guards[source.name]
    stored = await app[keys.INGEST].write(guard.redaction.apply(record))
    fields.update(event_id=str(stored.event_id), deliveries=0, duplicate=False)
    resources = app[keys.RESOURCES]
    send = chain(target, app[keys.REGISTRY], resources, config.server.max_body)
    delivery = claimed(guard.own.strip(record), target.name)
    started_at = app[keys.CLOCK].now()
    message = build_message(delivery, target, started_at)
    span = None
    if traced is not None:
        span = traced.forward()
        message = replace(message, headers=traced.outgoing(message.headers, span))
    started = time.perf_counter()
    try:
        result = await forward(send, message, proxy.timeout)
    except BaseException:
        if span is not None:
            span.end()  # cut short (the handler cancelled): no answer to record
        raise
    if traced is not None:
        traced.forwarded(span, target.name, result)
    duration_ms = (time.perf_counter() - started) * 1000
    fields.update(summary(target.name, result, duration_ms, proxy.fallback))
    finished = app[keys.CLOCK].now()
    status = "delivered" if result.outcome in DELIVERED else "dead"
    attempt = attempt_result(delivery, result, duration_ms, status, finished)
    # Written in the background: the provider's answer does not wait for it.
    app[keys.PROXY_ANSWERS].submit(ProxyAnswer(stored.event_id, target.name, started_at, attempt))
    return respond(result, proxy.fallback, stored.event_id)


def chain(target: TargetConfig, registry: Registry, resources: Resources, limit: int) -> Send:
    """The target's middleware chain (``sign:`` innermost) around the http target, created
    through the registry like any lane's but keeping the whole answer, up to `limit`."""
    options = replace(target.options, answer_limit=limit)
    send, _ = outbound.chain(target, registry, resources, options)
    return send


def claimed(record: EventRecord, target: str) -> Claimed:
    """The stored event as a relay would hold its first delivery to `target`."""
    return Claimed(
        id=delivery_id(record.id, target),
        event_id=record.id,
        target=target,
        attempt=1,
        interruptions=0,
        source=record.source,
        event_type=record.event_type,
        received_at=record.received_at,
        headers=tuple(record.headers),
        body=record.body,
        method=record.method,
        path=record.path,
        query=record.query,
    )


async def forward(send: Send, message: Message, seconds: float) -> SendResult:
    """The target's answer within `seconds`, or a result without a status saying why not."""
    try:
        async with asyncio.timeout(seconds):
            return await send(message)
    except TimeoutError:
        return SendResult(Outcome.TIMEOUT, error=f"no answer within {seconds:g}s")
    except Exception as exc:
        # A broken middleware must not cost the provider its answer: it gets the fallback.
        # Its type, not its message (it may quote the request): the attempt's error is on
        # the request's line (proxy_error) and shown in the inspector.
        site = crash_site(exc)
        log.error("proxy_forward_crashed", target=message.target, **site)
        return SendResult(Outcome.TARGET_ERROR, error=f"the forward crashed: {site['error']}")


def respond(result: SendResult, fallback: ProxyFallback | None, event_id: UUID) -> web.Response:
    """The target's answer if it gave one, else the fallback, else 502."""
    if result.status is not None and answered(result):
        return web.Response(status=result.status, headers=passed_back(result), body=result.body)
    if fallback is not None:
        return web.Response(
            status=fallback.status,
            body=fallback.body,
            headers={"Content-Type": fallback.content_type},
        )
    return web.json_response(
        {"error": "the target did not answer", "id": str(event_id)}, status=502
    )


def answered(result: SendResult) -> bool:
    """Whether the target gave an answer we can pass on (any final HTTP status)."""
    return result.status is not None and 200 <= result.status <= 599


def passed_back(result: SendResult) -> CIMultiDict[str]:
    """The target's headers, every value kept, minus those that describe its hop to us."""
    named = {
        token.strip().lower()
        for name, value in result.headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return CIMultiDict(
        (name, value)
        for name, value in result.headers
        if name.lower() not in _NOT_PASSED_BACK and name.lower() not in named
    )


def summary(
    target: str, result: SendResult, duration_ms: float, fallback: ProxyFallback | None
) -> dict[str, object]:
    """The target's answer for the request's log line (no body: it may hold anything)."""
    return {
        "proxy_target": target,
        "proxy_outcome": str(result.outcome),
        "proxy_status": result.status,
        "proxy_headers": {k.lower(): v for k, v in result.headers if k.lower() in _LOGGED_HEADERS},
        "proxy_bytes": len(result.body),
        "proxy_duration_ms": round(duration_ms, 2),
        "proxy_error": result.error,
        "proxy_answer": "target" if answered(result) else "fallback" if fallback else "502",
    }
