"""Who may use the admin surface: Bearer tokens for /admin/api, a signed session cookie
for the inspector's pages, CSRF tokens for their forms, and a limit on failed logins.

`Access` holds no aiohttp state and takes a clock, so it is tested without a server;
`admin_guard(access, ...)` is the aiohttp middleware in front of every ``/admin`` route:
an unauthenticated page request gets a 303 to ``/admin/login``, an API request a 401.

The session cookie carries the token's NAME and an expiry, never the secret, and is
signed with HMAC-SHA256 under a key derived from every configured token: changing or
removing a token ends the sessions made with the old set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.clock import Clock
from gateway.ingress.network import client_address
from gateway.ingress.request import preread
from gateway.sources import IPNetwork

COOKIE = "hookgate_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
LOGIN_PATH = "/admin/login"
API_PREFIX = "/admin/api"
# Reachable without a session: the login form itself and the stylesheet it uses.
PUBLIC_PATHS = frozenset({LOGIN_PATH})
PUBLIC_PREFIXES = ("/admin/static/",)
MAX_PEERS = 10_000
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated admin: the token's name (who, in the audit) and how they came in."""

    name: str
    via: str  # "bearer" or "session"
    csrf: str = ""  # the session's CSRF token; empty for bearer requests


IDENTITY = web.RequestKey("admin_identity", Identity)


def identity(request: web.Request) -> Identity:
    """The admin making this request (set by `admin_guard`)."""
    return request[IDENTITY]


class FailedLogins:
    """Failed logins per peer: `limit` per minute, refilled steadily; bounded in memory."""

    def __init__(self, limit: int) -> None:
        self.limit = float(limit)
        self.rate = limit / 60.0
        self._peers: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def wait(self, peer: str | None, now: float) -> float:
        """0 when `peer` may try; otherwise seconds until it may try again."""
        tokens = self._tokens(peer or "-", now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def failed(self, peer: str | None, now: float) -> None:
        key = peer or "-"
        self._peers[key] = (max(0.0, self._tokens(key, now) - 1), now)
        self._peers.move_to_end(key)
        if len(self._peers) > MAX_PEERS:
            self._peers.popitem(last=False)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._peers.get(key, (self.limit, now))
        return min(self.limit, tokens + max(0.0, now - at) * self.rate)


class Access:
    """Checks tokens (constant time), makes and reads session cookies and CSRF tokens."""

    def __init__(
        self, tokens: Mapping[str, str], clock: Clock, session_ttl: float, attempts: int = 5
    ) -> None:
        self._tokens = {name: secret.encode() for name, secret in tokens.items()}
        self._key = _derive_key(self._tokens)
        self.clock = clock
        self.session_ttl = session_ttl
        self.failures = FailedLogins(attempts)

    def token_name(self, secret: str) -> str | None:
        """The name of the token `secret` is, comparing against every one in constant time."""
        given = secret.encode()
        found = None
        for name, expected in self._tokens.items():
            if hmac.compare_digest(given, expected):
                found = name
        return found

    def bearer(self, header: str | None) -> str | None:
        scheme, _, secret = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        return self.token_name(secret.strip())

    def new_session(self, name: str) -> str:
        """A cookie value for `name`, valid for `session_ttl` seconds."""
        expires = int(self.clock.now().timestamp() + self.session_ttl)
        payload = orjson.dumps({"n": name, "e": expires, "r": os.urandom(9).hex()})
        body = _b64(payload)
        return f"{body}.{_b64(self._sign(b'session|' + body.encode()))}"

    def session(self, cookie: str | None) -> Identity | None:
        """Who a session cookie belongs to, or None if it is forged, expired or stale."""
        body, _, signature = (cookie or "").partition(".")
        expected = _b64(self._sign(b"session|" + body.encode()))
        if not body or not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            name, expires = str(data["n"]), float(data["e"])
        except (ValueError, KeyError, TypeError):
            return None
        if name not in self._tokens or expires <= self.clock.now().timestamp():
            return None
        return Identity(name, "session", self.csrf_token(cookie or ""))

    def csrf_token(self, cookie: str) -> str:
        """The CSRF token of a session: bound to its cookie, so it cannot be reused elsewhere."""
        return _b64(self._sign(b"csrf|" + cookie.encode()))[:32]

    def _sign(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()


def _derive_key(tokens: Mapping[str, bytes]) -> bytes:
    material = b"\0".join(name.encode() + b"=" + secret for name, secret in sorted(tokens.items()))
    return hmac.new(b"hookgate admin session v1", material, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def set_session_cookie(response: web.StreamResponse, value: str, ttl: float, secure: bool) -> None:
    response.set_cookie(
        COOKIE, value, max_age=int(ttl), path="/admin", httponly=True, samesite="Strict",
        secure=secure,
    )  # fmt: skip


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/admin")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def admin_guard(
    access: Access, trusted: Sequence[IPNetwork] = (), body_timeout: float = 30.0
) -> Middleware:
    """Middleware: every ``/admin`` request but the login form needs a token or a session.

    The body of a request it lets through (a form, the API's JSON) is read here within
    `body_timeout` (server.body_timeout), as ingest reads its own: else 408, and a client
    dripping a login form cannot hold a connection open for ever.
    """

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not (path == "/admin" or path.startswith("/admin/")):
            return await handler(request)
        if not is_public(path):
            peer = client_address(request, trusted)
            who = await _authenticate(request, access, peer, body_timeout)
            if isinstance(who, web.StreamResponse):
                return who
            request[IDENTITY] = who
        await preread(request, body_timeout)
        return await handler(request)

    return guard


async def _authenticate(
    request: web.Request, access: Access, peer: str | None, body_timeout: float
) -> Identity | web.StreamResponse:
    now = access.clock.now().timestamp()
    header = request.headers.get("Authorization")
    if header is not None:
        wait = access.failures.wait(peer, now)
        if wait:
            return too_many(wait)
        name = access.bearer(header)
        if name is None:
            access.failures.failed(peer, now)
            return unauthorized(request, "invalid token")
        return Identity(name, "bearer")
    who = access.session(request.cookies.get(COOKIE))
    if who is None:
        return unauthorized(request, "authentication required")
    if request.method in _UNSAFE and not await _csrf_ok(request, who, body_timeout):
        return web.json_response({"error": "missing or invalid CSRF token"}, status=403)
    return who


async def _csrf_ok(request: web.Request, who: Identity, body_timeout: float) -> bool:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        await preread(request, body_timeout)
        value = (await request.post()).get(CSRF_FIELD)  # cached: the handler reads it again
        given = value if isinstance(value, str) else None
    return given is not None and hmac.compare_digest(given.encode(), who.csrf.encode())


def unauthorized(request: web.Request, message: str) -> web.StreamResponse:
    """401 JSON for the API; for a page, a 303 to the login form that comes back here."""
    if is_api(request.path):
        return web.json_response(
            {"error": message}, status=401, headers={"WWW-Authenticate": 'Bearer realm="hookgate"'}
        )
    return see_other(f"{LOGIN_PATH}?next={quote(request.rel_url.raw_path_qs, safe='')}")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def too_many(wait: float) -> web.Response:
    return web.json_response(
        {"error": "too many failed logins; retry later"},
        status=429,
        headers={"Retry-After": str(max(1, int(wait + 0.999)))},
    )
