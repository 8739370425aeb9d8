"""The inspector's routes, mounted on whichever application serves /admin.

Every route here is behind the admin guard (a session or a token); only the static
files and the login form are public, as the guard decides. Errors a page cannot
recover from (an unknown id, a bad cursor, the database down) are answered as an HTML
page with the model's status, not as the API's JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from gateway import keys
from gateway.admin.auth import LOGIN_PATH
from gateway.errors import AdminError, StorageError
from gateway.ui import actions, views
from gateway.ui.render import HEADERS, STATIC_DIR, STATIC_PREFIX, render, setup_templates

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READ: list[tuple[str, str, Handler]] = [
    ("/admin", "ui.dashboard", views.dashboard),
    ("/admin/events", "ui.events", views.events),
    ("/admin/events/{id}", "ui.event", views.event),
    ("/admin/dead", "ui.dead", views.dead),
    ("/admin/rejected", "ui.rejected", views.rejected),
    ("/admin/targets", "ui.targets", views.targets),
    ("/admin/targets/{name}/blocked", "ui.blocked", views.blocked),
    ("/admin/replays", "ui.replays", views.replays),
    ("/admin/replays/{id}", "ui.replay", views.replay),
]
ACT: list[tuple[str, str, Handler]] = [
    ("/admin/events/{id}/replay", "ui.event_replay", actions.replay_event),
    ("/admin/dead/replay", "ui.dead_replay", actions.replay_dead),
    ("/admin/deliveries/{delivery}/cancel", "ui.cancel", actions.cancel_delivery),
    ("/admin/targets/{name}/pause", "ui.pause", actions.pause_target),
    ("/admin/targets/{name}/resume", "ui.resume", actions.resume_target),
    ("/admin/targets/{name}/release", "ui.release", actions.release_key),
]


def add_pages(app: web.Application) -> None:
    """Templates, the static files and every page and form handler, on `app`."""
    setup_templates(app)
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, name="ui.static")
    for path, name, handler in READ:
        app.router.add_get(path, html_errors(handler), name=name)
    for path, name, handler in ACT:
        app.router.add_post(path, html_errors(handler), name=name)


def html_errors(handler: Handler) -> Handler:
    """An `AdminError` from the model becomes an error page with its status; the database
    being down, a 503 page with Retry-After (like the API's)."""

    async def page(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AdminError as exc:
            context = {"message": exc.message, "status_code": exc.status}
            return render(request, "error.html", "", context, exc.status)
        except StorageError:
            message = (
                "The database is not answering right now; this page will work again once it does."
            )
            response = render(
                request, "error.html", "", {"message": message, "status_code": 503}, 503
            )
            response.headers["Retry-After"] = str(request.app[keys.CONFIG].ingest.retry_after)
            return response

    page.__name__ = page.__qualname__ = handler.__name__
    page.__doc__ = handler.__doc__
    return page


def login_page(request: web.Request, next_path: str, message: str, status: int) -> web.Response:
    """The sign-in form (posted to the admin login handler, which sets the session)."""
    context: dict[str, object] = {
        "next": next_path, "message": message, "action": LOGIN_PATH,
        "who": None, "csrf": "", "page": "ui.login", "notices": [],
        "query": {}, "filtered": False, "twin": {},
    }  # fmt: skip
    response = aiohttp_jinja2.render_template("login.html", request, context, status=status)
    response.headers.update(HEADERS)
    return response
