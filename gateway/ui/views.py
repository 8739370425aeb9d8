"""The inspector's pages that read: dashboard, events, one event, dead letters, rejected
requests, targets and replays. Thin handlers over `AdminModel`, like the JSON API's:
each parses its query the way its JSON twin does, so a page's URL and its twin's take
the same filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from aiohttp import web

from gateway import keys
from gateway.admin.api import event_filter, parse_time
from gateway.admin.model import DELIVERY_STATUSES, EVENT_STATUSES, AdminModel
from gateway.errors import AdminError
from gateway.ui import format as fmt
from gateway.ui.charts import bar_chart
from gateway.ui.render import render

SINCE_CHOICES = ("15m", "1h", "24h", "7d")


def model_of(request: web.Request) -> AdminModel:
    return request.app[keys.ADMIN_MODEL]


def text(query: Mapping[str, str], key: str) -> str | None:
    return query.get(key) or None


def event_id(request: web.Request, what: str = "event") -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError as exc:
        raise AdminError(f"no {what} with this id", 404) from exc


def choices(request: web.Request) -> dict[str, Any]:
    """What the filter forms offer: names from the config, statuses from the model."""
    config = model_of(request).config
    return {
        "sources": sorted(config.sources),
        "targets": sorted(config.targets),
        "event_statuses": EVENT_STATUSES,
        "delivery_statuses": DELIVERY_STATUSES,
        "since_choices": SINCE_CHOICES,
    }


async def dashboard(request: web.Request) -> web.Response:
    model = model_of(request)
    minutes = await model.series()
    targets = await model.targets()
    starts = [m.minute for m in minutes]
    received = bar_chart(starts, {"received": [m.ingested for m in minutes]})
    sent = bar_chart(
        starts,
        {"delivered": [m.delivered for m in minutes], "failed": [m.failed for m in minutes]},
    )
    context = {
        "received": received,
        "sent": sent,
        "targets": targets,
        "dead": sum(t.stats.dead for t in targets),
        "backlog": sum(t.stats.pending + t.stats.in_flight + t.stats.queued for t in targets),
        "actions": False,
    }
    if request.query.get("partial") == "summary":
        return render(request, "_dashboard.html", "ui.dashboard", context)
    return render(request, "dashboard.html", "ui.dashboard", context)


async def events(request: web.Request) -> web.Response:
    model = model_of(request)
    query = request.query
    page = await model.events(event_filter(query, model.clock.now()), text(query, "cursor"))
    context = {"events": page, **choices(request)}
    if query.get("partial") == "rows":
        return render(request, "_event_rows.html", "ui.events", context)
    return render(request, "events.html", "ui.events", context)


async def event(request: web.Request) -> web.Response:
    model = model_of(request)
    detail = await model.event(event_id(request))
    body = detail.request.body
    context = {
        "event": detail,
        "body": fmt.show_body(body.text, body.base64),
        "other_targets": sorted(set(model.config.targets) - {d.target for d in detail.deliveries}),
    }
    if request.query.get("partial") == "deliveries":
        return render(request, "_deliveries.html", "ui.events", context)
    return render(request, "event.html", "ui.events", context)


async def dead(request: web.Request) -> web.Response:
    model = model_of(request)
    query = request.query
    page = await model.deliveries(
        status="dead",
        target=text(query, "target"),
        since=parse_time(query.get("since"), model.clock.now(), "since"),
        cursor=text(query, "cursor"),
    )
    return render(request, "dead.html", "ui.dead", {"deliveries": page, **choices(request)})


async def rejected(request: web.Request) -> web.Response:
    model = model_of(request)
    query = request.query
    page = await model.rejected(
        source=text(query, "source"),
        since=parse_time(query.get("since"), model.clock.now(), "since"),
        cursor=text(query, "cursor"),
    )
    context = {"rejected": page, "bodies": {r.id: _body(r.request.body) for r in page.items}}
    return render(request, "rejected.html", "ui.rejected", {**context, **choices(request)})


async def targets(request: web.Request) -> web.Response:
    found = await model_of(request).targets()
    return render(request, "targets.html", "ui.targets", {"targets": found, "actions": True})


async def blocked(request: web.Request) -> web.Response:
    """The FIFO keys of a target a dead delivery holds back (ordering.on_dead: block)."""
    model = model_of(request)
    name = request.match_info["name"]
    context = {"target": await model.target(name), "keys": await model.blocked_keys(name)}
    return render(request, "blocked.html", "ui.targets", context)


async def replays(request: web.Request) -> web.Response:
    page = await model_of(request).replay_list(text(request.query, "cursor"))
    return render(request, "replays.html", "ui.replays", {"replays": page})


async def replay(request: web.Request) -> web.Response:
    replay_id = event_id(request, "replay")
    detail = await model_of(request).replay_detail(replay_id, text(request.query, "cursor"))
    return render(request, "replay.html", "ui.replays", {"detail": detail})


def _body(body: Any) -> fmt.Body:
    return fmt.show_body(body.text, body.base64)
