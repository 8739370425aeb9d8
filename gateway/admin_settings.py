"""The ``admin:`` section of hookgate.yaml: named tokens and an optional own listener.

Kept apart from gateway/config.py so that it depends on nothing but `Section`, and
outside gateway/admin/ so that reading the config never imports the admin surface.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.section import Section

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
DEFAULT_TOKEN_NAME = "admin"


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """Who may use the inspector and /admin/api, and where it listens.

    `tokens` maps a name (recorded in the audit as who did what) to its secret. No
    tokens: no admin route exists at all. `port` set: the admin surface has its own
    listener on `host` (default 127.0.0.1) and the public one serves none of it.
    """

    tokens: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int | None = None
    session_ttl: float = 12 * 3600.0
    login_attempts: int = 5  # failed logins (or bad tokens) per peer per minute

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    @property
    def token(self) -> str | None:
        """The single token's secret, when there is exactly one (for scripts and tests)."""
        return next(iter(self.tokens.values())) if len(self.tokens) == 1 else None


_DEFAULTS = AdminConfig()


def parse_admin(s: Section) -> AdminConfig:
    tokens = _tokens(s)
    port = s.integer("port", None, minimum=1)
    host = s.text("host", None)
    if host is not None and port is None:
        s.fail("needs admin.port (the admin surface's own listener)", "host")
    if port is not None and port > 65535:
        s.fail(f"expected a port number up to 65535, got {port}", "port")
    config = AdminConfig(
        tokens=tokens,
        host=host or _DEFAULTS.host,
        port=port,
        session_ttl=s.duration("session_ttl", _DEFAULTS.session_ttl),
        login_attempts=s.integer("login_attempts", _DEFAULTS.login_attempts, minimum=1),
    )
    s.done()
    return config


def _tokens(s: Section) -> dict[str, str]:
    single: str | None = s.text("token", None) or None
    named = s.section("tokens")
    tokens: dict[str, str] = {}
    for name, value in named.items():
        if not _NAME.match(name):
            named.fail("a token name may use letters, digits, '_', '.', '@' and '-'", name)
        elif not isinstance(value, str | int) or isinstance(value, bool):
            named.fail("expected the token's secret as a string", name)
        elif str(value):  # an empty ${VAR:-} leaves this name without a token
            tokens[name] = str(value)
    if single is not None:
        if tokens:
            s.fail("use token or tokens, not both", "token")
        else:
            tokens[DEFAULT_TOKEN_NAME] = single
    return tokens
