"""Every error hookgate raises on purpose.

    HookgateError
    ├── ConfigError            a config file is wrong; carries every problem with its key path
    ├── PluginError            a plugin could not be found or loaded
    ├── StorageError           the database failed us
    │   ├── StorageUnavailable     it cannot be reached or timed out: retry later (503)
    │   └── SchemaTooNew           the database was migrated by a newer hookgate
    └── IngressError           a request we answer with a 4xx; carries its status
        ├── UnknownSource          404
        ├── MethodNotAllowed       405
        └── BodyTooLarge           413

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

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems) or None)


class PluginError(HookgateError):
    """A plugin could not be loaded."""


class StorageError(HookgateError):
    """The database failed."""


class StorageUnavailable(StorageError):
    """The database is unavailable; try again later."""


class SchemaTooNew(StorageError):
    """The database schema is newer than this hookgate; upgrade hookgate."""


class IngressError(HookgateError):
    """The request was refused."""

    status = 400


class UnknownSource(IngressError):
    """No source is configured at this path."""

    status = 404


class MethodNotAllowed(IngressError):
    """This source does not accept that method."""

    status = 405


class BodyTooLarge(IngressError):
    """The request body is larger than server.max_body."""

    status = 413
