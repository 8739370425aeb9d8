"""Reading one mapping of hookgate.yaml while remembering where it is.

A `Section` hands out typed values and records every problem with its key path, so a
config file with five mistakes is reported as five lines, not one traceback.
Plugins validate their own options through the same class.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gateway.units import parse_duration, parse_size, show_value

T = TypeVar("T")
_MISSING: Any = object()
REQUIRED: Any = _MISSING  # as a default: the key must be there (what omitting it means)


def show(value: object) -> str:
    """A config value as the user wrote it, for error messages."""
    return show_value(value)


class Section:
    """One mapping of the config, its key path, and the shared list of problems."""

    def __init__(self, data: object, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self._seen: set[str] = set()
        self._known: set[str] = set()  # keys asked about, present or not: for suggestions
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.fail(f"expected a mapping, got {show(data)}")
            data = {}
        self.data: Mapping[str, Any] = data

    def key_path(self, key: str) -> str:
        """The full key path of `key` in this section, for messages."""
        return f"{self.path}.{key}" if self.path else key

    def fail(self, message: str, key: str | None = None) -> None:
        """Record a problem at `key` (at this section itself without one)."""
        where = self.key_path(key) if key is not None else self.path or "(top level)"
        self.problems.append(f"{where}: {message}")

    def __contains__(self, key: str) -> bool:
        self._known.add(key)
        return key in self.data

    def get(
        self, key: str, convert: Callable[[Any], T], default: T = _MISSING, fallback: Any = None
    ) -> T:
        """The value at `key` passed through `convert`; a ValueError becomes a problem.

        Without a default the key is required; when it is missing or invalid the problem
        is recorded and `fallback` (a harmless empty value) is returned, so parsing
        carries on and reports every problem at once.
        """
        self._seen.add(key)
        if default is _MISSING:
            default = fallback
            required = True
        else:
            required = False
        if key not in self.data or self.data[key] is None:
            if required:
                self.fail("is required", key)
            return default
        try:
            return convert(self.data[key])
        except ValueError as exc:
            self.fail(str(exc), key)
            return default

    def text(self, key: str, default: Any = _MISSING) -> Any:
        """A string (numbers are taken as written)."""
        return self.get(key, _string, default, fallback="")

    def integer(self, key: str, default: Any = _MISSING, minimum: int = 0) -> Any:
        """A whole number of at least `minimum`."""
        return self.get(key, lambda v: _integer(v, minimum), default, fallback=minimum)

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        """true or false (also yes/no, 1/0)."""
        return self.get(key, _boolean, default, fallback=False)

    def duration(self, key: str, default: Any = _MISSING) -> Any:
        """Seconds, from a number or a duration such as "10s", "250ms" or "5m"."""
        return self.get(key, parse_duration, default, fallback=0.0)

    def size(self, key: str, default: Any = _MISSING) -> Any:
        """Bytes, from a number or a size such as "64KiB" or "1MB"."""
        return self.get(key, parse_size, default, fallback=0)

    def text_list(self, key: str, default: Any = _MISSING) -> Any:
        """A tuple of strings, from a list or a single string."""
        return self.get(key, _string_list, default, fallback=())

    def section(self, key: str) -> Section:
        """The nested mapping at `key` (empty when absent)."""
        self._seen.add(key)
        return Section(self.data.get(key), self.key_path(key), self.problems)

    def items(self) -> list[tuple[str, Any]]:
        """Every key and value, all counted as asked for (for maps of free-form keys)."""
        self._seen.update(self.data)
        return [(str(k), v) for k, v in self.data.items()]

    def done(self) -> None:
        """Report every key that nothing asked for: a typo must not pass silently.

        The nearest key that was asked for is suggested (`sing` → did you mean `sign`?).
        """
        known = sorted((self._seen | self._known) - set(self.data))
        for key in self.data:
            if key not in self._seen:
                self.fail(unknown_key(str(key), known), str(key))


def unknown_key(key: str, known: list[str]) -> str:
    """'unknown key', with the closest of `known` as a suggestion when one is close."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"unknown key (did you mean {show(close[0])}?)" if close else "unknown key"


def _string(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a string, got {show(value)}")
    return str(value)


def _integer(value: object, minimum: int) -> int:
    number = None
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            number = int(value)
        except ValueError:
            number = None
    if number is None or number < minimum:
        raise ValueError(f"expected a whole number >= {minimum}, got {show(value)}")
    return number


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
        return value.lower() in {"true", "yes", "1"}
    raise ValueError(f"expected true or false, got {show(value)}")


def _string_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {show(value)}")
    return tuple(value)
