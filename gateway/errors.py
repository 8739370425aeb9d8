"""Every error hookgate raises on purpose.

    HookgateError
    ├── ConfigError            a config file is wrong; carries every problem with its key path
    ├── PluginError            a plugin could not be found or loaded
    ├── FetchError             a plugin's GET through `Resources.fetch` got no usable answer
    ├── StorageError           the database failed us
    │   ├── StorageUnavailable     it cannot be reached or timed out: retry later (503)
    │   ├── SchemaTooNew           the database was migrated by a newer hookgate
    │   └── EncryptionKeyMissing   rows are encrypted with a key this config does not have
    └── IngressError           a request we answer with a 4xx; carries its status
        ├── BadRequest             400: a body that does not decode as its Content-Encoding
        │   └── ClientDisconnected     the client hung up before its body was read
        ├── VerificationError      401: the request did not prove it came from the provider
        ├── Forbidden              403: the peer is not on the source's IP allowlist
        ├── UnknownSource          404
        ├── MethodNotAllowed       405
        ├── RequestTimeout         408: the body did not arrive within server.body_timeout
        ├── BodyTooLarge           413 (also after inflating a compressed body)
        ├── UnsupportedEncoding    415: a Content-Encoding hookgate cannot decode
        ├── RateLimited            429: carries Retry-After
        └── AdminError             an admin API request that cannot be done: 400, 404, 409, 422

Each class's docstring is its default message.
"""

from __future__ import annotations

from collections.abc import Iterable


class HookgateError(Exception):
    """hookgate failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__ or type(self).__name__)

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(HookgateError):
    """The configuration is invalid."""

    def __init__(self, problems: Iterable[str], file: str | None = None) -> None:
        self.problems = tuple(problems)
        self.file = file  # the config file the problems are in, when there is one
        super().__init__("\n".join(self.lines()) or None)

    def lines(self) -> list[str]:
        """One line per problem, each prefixed with the file it is in."""
        prefix = f"{self.file}: " if self.file else ""
        return [prefix + problem for problem in self.problems]


class PluginError(HookgateError):
    """A plugin could not be loaded."""


class FetchError(HookgateError):
    """The URL did not answer 200 with a body within the limits."""


class StorageError(HookgateError):
    """The database failed."""


class StorageUnavailable(StorageError):
    """The database is unavailable; try again later."""


class SchemaTooNew(StorageError):
    """The database schema is newer than this hookgate; upgrade hookgate."""


class EncryptionKeyMissing(StorageError):
    """Rows are encrypted with a key that is not in encryption.keys."""


class IngressError(HookgateError):
    """The request was refused."""

    status = 400


class BadRequest(IngressError):
    """The request is malformed."""

    status = 400


class ClientDisconnected(BadRequest):
    """The client closed the connection before its request was read."""


class RequestTimeout(IngressError):
    """The request body did not arrive in time."""

    status = 408


class UnsupportedEncoding(IngressError):
    """The body's Content-Encoding is not one hookgate can decode."""

    status = 415


class VerificationError(IngressError):
    """The request could not be verified."""

    status = 401

    @property
    def reason(self) -> str:
        """Why, as the 401's ``{"error": ...}`` says it."""
        return self.message


class Forbidden(IngressError):
    """The peer address is not allowed for this source."""

    status = 403


class RateLimited(IngressError):
    """Too many requests; retry later."""

    status = 429

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownSource(IngressError):
    """No source is configured at this path."""

    status = 404


class MethodNotAllowed(IngressError):
    """This source does not accept that method."""

    status = 405


class BodyTooLarge(IngressError):
    """The request body is larger than server.max_body."""

    status = 413


class AdminError(IngressError):
    """The admin request cannot be done."""

    def __init__(self, message: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
