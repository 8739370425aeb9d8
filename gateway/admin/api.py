"""The admin JSON API under /admin/api: thin handlers over `AdminModel`.

Each handler reads its query or JSON body, calls the model, and answers JSON; errors are
`AdminError`s (400/404/409/422) that the error middleware answers as ``{"error": ...}``.
The OpenAPI 3.1 document (openapi.py) describes every route here and tests check the
real answers against it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any
from uuid import UUID

import orjson
from aiohttp import web

from gateway import keys
from gateway.admin import openapi
from gateway.admin.auth import identity
from gateway.admin.model import DEFAULT_LIMIT, AdminModel, TargetHealth
from gateway.errors import AdminError
from gateway.middleware import identify
from gateway.storage.admin import EventFilter, ReplayFilter, StreamEvent
from gateway.units import parse_duration

P = "/admin/api"
_REPLAY_FILTER_KEYS = frozenset({"source", "type", "status", "target", "outcome", "since",
                                 "until", "q"})  # fmt: skip


def _default(value: object) -> object:
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    if isinstance(value, UUID):  # asyncpg's own UUID subclass
        return str(value)
    raise TypeError


def json(data: object, status: int = 200) -> web.Response:
    """Dataclasses, datetimes and UUIDs as JSON (orjson knows them all)."""
    body = orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type="application/json")


def _model(request: web.Request) -> AdminModel:
    return request.app[keys.ADMIN_MODEL]


def _text(query: Mapping[str, str], key: str) -> str | None:
    value = query.get(key)
    return value if value else None


def parse_time(value: str | None, now: dt.datetime, key: str) -> dt.datetime | None:
    """An ISO 8601 time (UTC when it has no zone), or a duration meaning that long ago."""
    if not value:
        return None
    try:
        return now - dt.timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise AdminError(f"{key}: expected an ISO 8601 time or a duration like 1h") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _limit(query: Mapping[str, str]) -> int:
    value = query.get("limit")
    if not value:
        return DEFAULT_LIMIT
    if not value.isdigit():
        raise AdminError("limit: expected a whole number >= 1")
    return int(value)


def _uuid(request: web.Request, key: str = "id") -> UUID:
    try:
        return UUID(request.match_info[key])
    except ValueError as exc:
        raise AdminError(f"{key}: not an id", 404) from exc


async def _body(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The JSON object posted; an unknown key is an error (a typo must not change what a
    replay does)."""
    data = await _json_object(request)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise AdminError(f"{unknown[0]}: unknown key")
    return data


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AdminError("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise AdminError("the body must be a JSON object")
    return data


def _targets(data: Mapping[str, Any], key: str = "targets") -> tuple[str, ...] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AdminError(f"{key}: expected a list of target names")
    return tuple(value)


def _flag(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise AdminError(f"{key}: expected true or false")
    return value


def event_filter(query: Mapping[str, str], now: dt.datetime) -> EventFilter:
    return EventFilter(
        source=_text(query, "source"),
        type=_text(query, "type"),
        status=_text(query, "status"),
        target=_text(query, "target"),
        since=parse_time(query.get("since"), now, "since"),
        until=parse_time(query.get("until"), now, "until"),
        q=_text(query, "q"),
    )


def replay_filter(data: Mapping[str, Any], now: dt.datetime) -> ReplayFilter:
    raw = data.get("filter", {})
    if not isinstance(raw, dict) or not all(isinstance(v, str | None) for v in raw.values()):
        raise AdminError("filter: expected an object of strings")
    unknown = sorted(set(raw) - _REPLAY_FILTER_KEYS)
    if unknown:
        raise AdminError(f"filter.{unknown[0]}: unknown key")
    targets = _targets(data)
    if raw.get("target"):
        targets = (*(targets or ()), raw["target"])
    return ReplayFilter(
        source=raw.get("source") or None,
        type=raw.get("type") or None,
        status=raw.get("status") or None,
        targets=targets,
        outcome=raw.get("outcome") or None,
        since=parse_time(raw.get("since"), now, "filter.since"),
        until=parse_time(raw.get("until"), now, "filter.until"),
        q=raw.get("q") or None,
    )


async def list_events(request: web.Request) -> web.Response:
    model = _model(request)
    f = event_filter(request.query, model.clock.now())
    page = await model.events(f, request.query.get("cursor"), _limit(request.query))
    return json(page)


async def get_event(request: web.Request) -> web.Response:
    return json(await _model(request).event(_uuid(request)))


async def replay_event(request: web.Request) -> web.Response:
    data = await _body(request, frozenset({"targets", "new_key"}))
    result = await _model(request).replay_event(
        _uuid(request), identity(request).name, _targets(data), _flag(data, "new_key", False)
    )
    return json(result, status=201)


async def list_deliveries(request: web.Request) -> web.Response:
    model, query = _model(request), request.query
    page = await model.deliveries(
        status=query.get("status", "dead") or None,
        target=_text(query, "target"),
        since=parse_time(query.get("since"), model.clock.now(), "since"),
        cursor=query.get("cursor"),
        limit=_limit(query),
    )
    return json(page)


async def cancel_delivery(request: web.Request) -> web.Response:
    await _model(request).cancel(_uuid(request), identity(request).name)
    return json({"id": _uuid(request), "status": "cancelled"})


async def list_rejected(request: web.Request) -> web.Response:
    model, query = _model(request), request.query
    page = await model.rejected(
        source=_text(query, "source"),
        since=parse_time(query.get("since"), model.clock.now(), "since"),
        cursor=query.get("cursor"),
        limit=_limit(query),
    )
    return json(page)


def target_json(health: TargetHealth) -> dict[str, Any]:
    extra = {"breaker": health.breaker, "success_ratio": health.success_ratio,
             "blocks_on_dead": health.blocks_on_dead}  # fmt: skip
    return {**asdict(health.stats), **extra}


async def list_targets(request: web.Request) -> web.Response:
    return json({"items": [target_json(t) for t in await _model(request).targets()]})


async def get_target(request: web.Request) -> web.Response:
    return json(target_json(await _model(request).target(request.match_info["name"])))


async def pause_target(request: web.Request) -> web.Response:
    data = await _body(request, frozenset({"reason"}))
    reason = data.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise AdminError("reason: expected a string")
    name = request.match_info["name"]
    await _model(request).set_paused(name, True, reason, f"admin {identity(request).name}")
    return await get_target(request)


async def resume_target(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await _model(request).set_paused(name, False, None, f"admin {identity(request).name}")
    return await get_target(request)


async def blocked_keys(request: web.Request) -> web.Response:
    model = _model(request)
    keys_ = await model.blocked_keys(request.match_info["name"], _limit(request.query))
    return json({"items": keys_})


async def release_key(request: web.Request) -> web.Response:
    data = await _body(request, frozenset({"key"}))
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise AdminError("key: expected the FIFO key to release")
    released = await _model(request).release_key(request.match_info["name"], key)
    return json({"target": request.match_info["name"], "key": key, "released": released})


async def list_replays(request: web.Request) -> web.Response:
    page = await _model(request).replay_list(request.query.get("cursor"), _limit(request.query))
    return json(page)


async def get_replay(request: web.Request) -> web.Response:
    model, query = _model(request), request.query
    detail = await model.replay_detail(_uuid(request), query.get("cursor"), _limit(query))
    return json(detail)


async def create_replay(request: web.Request) -> web.Response:
    model = _model(request)
    data = await _body(request, frozenset({"filter", "targets", "dry_run", "new_key"}))
    result = await model.replay_matching(
        replay_filter(data, model.clock.now()),
        identity(request).name,
        dry_run=_flag(data, "dry_run", True),
        new_key=_flag(data, "new_key", False),
    )
    return json(result, status=200 if result.dry_run else 201)


async def dashboard(request: web.Request) -> web.Response:
    model = _model(request)
    series = await model.series()
    targets = [target_json(t) for t in await model.targets()]
    return json({"minutes": series, "targets": targets})


async def whoami(request: web.Request) -> web.Response:
    who = identity(request)
    return json({"name": who.name, "via": who.via, "csrf_token": who.csrf or None})


async def openapi_document(request: web.Request) -> web.Response:
    return json(openapi.DOCUMENT)


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `event` for each new event, `attempt` for each finished attempt,
    a comment line as a heartbeat when there was nothing."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    })  # fmt: skip
    await identify(response).prepare(request)
    follow = request.app[keys.ADMIN_STREAM].follow(_text(request.query, "source"))
    try:
        async for item in follow:
            if item is None:
                await response.write(b": idle\n\n")
                continue
            kind = b"event" if isinstance(item, StreamEvent) else b"attempt"
            data = orjson.dumps(item, default=_default)
            await response.write(b"event: %s\ndata: %s\n\n" % (kind, data))
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away
    finally:
        await follow.aclose()
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(f"{P}/openapi.json", openapi_document)
    router.add_get(f"{P}/me", whoami)
    router.add_get(f"{P}/events", list_events)
    router.add_get(f"{P}/events/{{id}}", get_event)
    router.add_post(f"{P}/events/{{id}}/replay", replay_event)
    router.add_get(f"{P}/deliveries", list_deliveries)
    router.add_post(f"{P}/deliveries/{{id}}/cancel", cancel_delivery)
    router.add_get(f"{P}/rejected", list_rejected)
    router.add_get(f"{P}/targets", list_targets)
    router.add_get(f"{P}/targets/{{name}}", get_target)
    router.add_post(f"{P}/targets/{{name}}/pause", pause_target)
    router.add_post(f"{P}/targets/{{name}}/resume", resume_target)
    router.add_get(f"{P}/targets/{{name}}/blocked", blocked_keys)
    router.add_post(f"{P}/targets/{{name}}/release", release_key)
    router.add_get(f"{P}/replays", list_replays)
    router.add_post(f"{P}/replays", create_replay)
    router.add_get(f"{P}/replays/{{id}}", get_replay)
    router.add_get(f"{P}/dashboard", dashboard)
    router.add_get(f"{P}/stream", stream)
