"""The inspector's forms that change something: replay an event (per target or all),
bulk-replay dead letters (a dry run first, then the confirmed run), cancel a pending
delivery, pause and resume a target, release a FIFO key a dead delivery blocks.

Each is a POST from one of our own pages; the admin guard has already checked the
session and its CSRF token. Each answers 303 to a page that shows the result (so a
reload does not repeat the action), through the same `AdminModel` calls the JSON API
makes, with the same audit (who = the session's token name).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web
from multidict import MultiDictProxy

from gateway.admin.api import parse_time
from gateway.admin.auth import identity, see_other
from gateway.errors import AdminError
from gateway.storage.admin import ReplayFilter
from gateway.ui.render import page_url, render
from gateway.ui.views import choices, event_id, model_of

Form = MultiDictProxy[Any]


def field(form: Form, key: str) -> str | None:
    value = form.get(key)
    return value.strip() or None if isinstance(value, str) else None


def fields(form: Form, key: str) -> list[str]:
    return [v for v in form.getall(key, []) if isinstance(v, str) and v]


async def replay_event(request: web.Request) -> web.StreamResponse:
    """Replay one event: to the targets ticked (or the one button's), else to all it had."""
    form = await request.post()
    event = event_id(request)
    targets = fields(form, "target") or None
    result = await model_of(request).replay_event(
        event, identity(request).name, targets, new_key=field(form, "new_key") == "on"
    )
    where = f"/admin/events/{event}"
    return see_other(page_url(where, notice="replayed", n=result.counts.deliveries))


def dead_filter(form: Form, request: web.Request) -> ReplayFilter:
    """The dead-letter list's filter, as the bulk replay's: what you see is what you replay."""
    target = field(form, "target")
    return ReplayFilter(
        status="dead",
        targets=(target,) if target else None,
        since=parse_time(field(form, "since"), model_of(request).clock.now(), "since"),
    )


async def replay_dead(request: web.Request) -> web.StreamResponse:
    """Step one (dry run): how many would go, per target. Step two (confirmed): do it."""
    form = await request.post()
    model = model_of(request)
    who = identity(request).name
    wanted = dead_filter(form, request)
    confirmed = field(form, "confirm") == "yes"
    result = await model.replay_matching(wanted, who, dry_run=not confirmed)
    if confirmed:
        where = f"/admin/replays/{result.id}"
        return see_other(page_url(where, notice="replayed", n=result.counts.deliveries))
    context = {
        "counts": result.counts,
        "replay_id": result.id,
        "filter": {"target": field(form, "target"), "since": field(form, "since")},
        **choices(request),
    }
    return render(request, "dead_confirm.html", "ui.dead", context)


async def cancel_delivery(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        delivery = UUID(request.match_info["delivery"])
    except ValueError as exc:
        raise AdminError("no delivery with this id", 404) from exc
    await model_of(request).cancel(delivery, identity(request).name)
    back = field(form, "event") or ""
    where = f"/admin/events/{UUID(back)}" if _is_uuid(back) else "/admin/events"
    return see_other(page_url(where, notice="cancelled"))


async def pause_target(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = request.match_info["name"]
    reason = field(form, "reason")
    await model_of(request).set_paused(name, True, reason, f"admin {identity(request).name}")
    return see_other(page_url("/admin/targets", notice="paused"))


async def resume_target(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    await model_of(request).set_paused(name, False, None, f"admin {identity(request).name}")
    return see_other(page_url("/admin/targets", notice="resumed"))


async def release_key(request: web.Request) -> web.StreamResponse:
    """Let the later deliveries of a FIFO key go; the dead one stays dead."""
    form = await request.post()
    name = request.match_info["name"]
    key = field(form, "key")
    if key is None:
        raise AdminError("key: expected the FIFO key to release")
    released = await model_of(request).release_key(name, key)
    where = f"/admin/targets/{name}/blocked"
    return see_other(page_url(where, notice="released", n=released))


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
