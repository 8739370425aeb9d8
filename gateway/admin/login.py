"""The login form, login and logout: a token in, a signed session cookie out.

The form here is deliberately plain (no template, no script); the inspector's pages
(gateway/ui/) may render their own login page and post it to the same handler.
"""

from __future__ import annotations

import html

from aiohttp import web

from gateway import keys
from gateway.admin.auth import (
    CSRF_FIELD,
    LOGIN_PATH,
    clear_session_cookie,
    identity,
    see_other,
    set_session_cookie,
    too_many,
)
from gateway.ingress.network import client_address

HOME = "/admin"

_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hookgate — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 24rem; margin: 4rem auto">
<h1>hookgate</h1>
<form method="post" action="/admin/login">
<input type="hidden" name="next" value="{next}">
<label>Admin token <input type="password" name="token" autocomplete="current-password"
 autofocus required></label>
<button type="submit">Sign in</button>
</form>
<p role="alert">{message}</p>
</body></html>
"""


def safe_next(value: object) -> str:
    """Where to go after logging in: only a path of the admin surface (no open redirect)."""
    if not isinstance(value, str) or not value.startswith(HOME) or value.startswith("//"):
        return HOME
    if "\\" in value or "\r" in value or "\n" in value:
        return HOME
    return value


def login_form(next_path: str, message: str = "", status: int = 200) -> web.Response:
    page = _FORM.format(next=html.escape(next_path), message=html.escape(message))
    return web.Response(text=page, status=status, content_type="text/html", headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-store"}


async def login_page(request: web.Request) -> web.Response:
    return login_form(safe_next(request.query.get("next")))


async def login(request: web.Request) -> web.StreamResponse:
    """Check the token (failures limited per peer); set the session cookie; go on."""
    access = request.app[keys.ADMIN_ACCESS]
    config = request.app[keys.CONFIG]
    form = await request.post()
    next_path = safe_next(form.get("next"))
    peer = client_address(request, config.server.trusted_proxies)
    now = access.clock.now().timestamp()
    wait = access.failures.wait(peer, now)
    if wait:
        return too_many(wait)
    secret = form.get("token")
    name = access.token_name(secret) if isinstance(secret, str) and secret else None
    if name is None:
        access.failures.failed(peer, now)
        return login_form(next_path, "That token is not valid.", status=401)
    response = see_other(next_path)
    set_session_cookie(response, access.new_session(name), access.session_ttl, request.secure)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (the guard checked its CSRF token: a POST from our own form)."""
    identity(request)
    response = see_other(LOGIN_PATH)
    clear_session_cookie(response)
    return response


__all__ = ["CSRF_FIELD", "login", "login_page", "logout", "safe_next"]
