"""structlog set-up: context variables, level, ISO UTC time; JSON unless on a terminal.

Libraries' own loggers are tamed here too (`quiet_libraries`): aiohttp's print request
lines, headers and the bytes its parser refused, asyncpg's pool prints a traceback on
every reconnection attempt during an outage. hookgate logs those events itself, one
line each, without request bytes; what the libraries still say comes out as one line
with the error's type and no traceback, at most once a minute per message.

JSON lines written from inside a running event loop are gathered and written once per
loop iteration (one system call for every line logged meanwhile, in order), so a busy
server does not pay a write per request; outside a loop each line is written at once.
A JSON line is made by one processor (`_JSONLine`: level, time, exception and stack,
rendered) rather than five: a busy server writes one per request.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import logging
import sys
import threading
import time
import traceback
from typing import Any

import orjson
import structlog


class _Stderr:
    """Whatever sys.stderr is at the time of writing (it may be swapped, e.g. by tests)."""

    def write(self, data: bytes | str) -> None:
        if isinstance(data, bytes):
            sys.stderr.flush()  # keep text and byte writes in order
            sys.stderr.buffer.write(data)
        else:
            sys.stderr.write(data)

    def flush(self) -> None:
        sys.stderr.flush()


class _Gathered:
    """Bytes written during one event loop iteration, written out together at its end."""

    def __init__(self, out: _Stderr) -> None:
        self._out = out
        self._lines: list[bytes] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # where write_out is due
        self._thread = 0

    def write(self, data: bytes) -> None:
        loop = self._loop
        # A write_out is due on the loop running in this thread: no need to ask for the
        # running loop (on Python 3.11 that is a getpid() system call per line).
        if self._lines and loop is not None and loop.is_running() and self._here():
            self._lines.append(data)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write_out()
            self._out.write(data)
            return
        if not self._lines:
            loop.call_soon(self.write_out)
            self._loop, self._thread = loop, threading.get_ident()
        self._lines.append(data)

    def _here(self) -> bool:
        return threading.get_ident() == self._thread

    def flush(self) -> None:
        """Nothing to do: a line waits at most until the loop's current iteration ends."""

    def write_out(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._out.write(b"".join(lines))
            self._out.flush()


class _Direct:
    """The way out of `info` while structlog is configured as `configure` left it for JSON:
    the same two processors called directly, the line handed to the same output, without
    a bound logger made, its context copied and its processors looped over per line."""

    def __init__(self, render: _JSONLine, wrapper: Any, out: _Gathered, level: int) -> None:
        self._processors = [structlog.contextvars.merge_contextvars, render]
        self._render = render
        self._wrapper = wrapper
        self._out = out
        self.level = level

    def holds(self) -> bool:
        """structlog still runs these processors through this wrapper (a test's
        `capture_logs` or a `structlog.configure` elsewhere changes them)."""
        config = structlog.get_config()
        return config["processors"] == self._processors and config["wrapper_class"] is self._wrapper

    def write(self, event_dict: dict[str, Any]) -> None:
        merged = structlog.contextvars.merge_contextvars(None, "info", event_dict)
        self._out.write(self._render(None, "info", merged) + b"\n")


_direct: _Direct | None = None


def configure(level: str = "info", json: bool | None = None) -> None:
    """Configure structlog (and route stdlib logging through the same output)."""
    global _direct
    if json is None:
        json = not sys.stderr.isatty()
    number = logging.getLevelNamesMapping()[level.upper()]
    wrapper = structlog.make_filtering_bound_logger(number)
    processors: list[structlog.typing.Processor] = [structlog.contextvars.merge_contextvars]
    _direct = None
    if json:
        render = _JSONLine()
        processors.append(render)
        gathered = _Gathered(_Stderr())
        atexit.register(gathered.write_out)  # what the last loop iteration left
        factory: structlog.typing.WrappedLogger = structlog.BytesLoggerFactory(gathered)  # type: ignore[arg-type]
        _direct = _Direct(render, wrapper, gathered, number)
    else:
        processors += [
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(),
        ]
        factory = structlog.PrintLoggerFactory(_Stderr())  # type: ignore[arg-type]
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper,
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
    quiet_libraries()


class _JSONLine:
    """`add_log_level`, `TimeStamper(fmt="iso", utc=True)`, `StackInfoRenderer`,
    `format_exc_info` and `JSONRenderer` (orjson) in one processor, with the same output:
    one call instead of five per line, and the time's text made once per second."""

    def __init__(self) -> None:
        self._stack = structlog.processors.StackInfoRenderer()
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> bytes:
        event_dict["level"] = _LEVELS.get(method_name, method_name)
        event_dict["timestamp"] = self._now()
        if "exc_info" in event_dict or "stack_info" in event_dict:
            event_dict = structlog.processors.format_exc_info(
                logger, method_name, self._stack(logger, method_name, event_dict)
            )
        return orjson.dumps(event_dict)

    def _now(self) -> str:
        """Now as `TimeStamper` writes it: ``2026-12-01T22:43:10.121725Z``."""
        now = time.time()
        second = int(now)
        if second != self._second:
            stamp = dt.datetime.fromtimestamp(second, dt.UTC).replace(tzinfo=None)
            self._second, self._prefix = second, stamp.isoformat()
        return f"{self._prefix}.{int((now - second) * 1e6):06d}Z"


def info(logger: Any, event: str, fields: dict[str, Any]) -> None:
    """`logger.info(event, **fields)`, with `fields` (a dict made for this line) taken as
    the event's dict: the one line per request skips the bound logger's keyword
    arguments, copied once per call layer. Same processors, same output (`_Direct`)."""
    direct = _direct
    if direct is not None and direct.holds():
        if direct.level <= logging.INFO:
            fields["event"] = event
            direct.write(fields)
        return
    bound = logger.bind()  # the configured logger (cached after the first use)
    enabled = getattr(bound, "is_enabled_for", None)
    if enabled is None or not hasattr(bound, "_process_event"):  # another wrapper class
        logger.info(event, **fields)
        return
    if not enabled(logging.INFO):
        return
    try:
        args, kw = bound._process_event("info", event, fields)
    except structlog.DropEvent:
        return
    bound._logger.info(*args, **kw)


def crash_site(exc: BaseException) -> dict[str, object]:
    """Where `exc` happened, for a log line: its type and its traceback's places
    (``file:line in function``, innermost last), not its message. A message may hold what
    the failing code was handed (a header's value, part of a body, a secret); the places
    are the code's own."""
    kind = type(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "error": f"{kind.__module__}.{kind.__qualname__}",
        "frames": [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames],
    }


_LEVELS = {"warn": "warning", "exception": "error"}  # as structlog's add_log_level names them
_QUIETED = ("aiohttp.server", "aiohttp.web", "aiohttp.internal", "asyncpg.pool")
SAMPLE_SECONDS = 60.0


class _OneLine(logging.Filter):
    """A library's record without its arguments or traceback (they can hold request
    bytes); the same message at most once per `SAMPLE_SECONDS`."""

    def __init__(self) -> None:
        super().__init__("hookgate")
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = (record.name, str(record.msg))
        if len(self._last) > 1000:  # messages formatted before logging are all different
            self._last.clear()
        if now - self._last.get(key, -SAMPLE_SECONDS) < SAMPLE_SECONDS:
            return False
        self._last[key] = now
        error = record.exc_info[1] if record.exc_info else None
        record.msg = "%s (%s)" if error is not None else "%s"
        record.args = (key[1], type(error).__name__) if error is not None else (key[1],)
        record.exc_info = record.exc_text = record.stack_info = None
        return True


class _Never(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def quiet_libraries() -> None:
    """Tame aiohttp's and asyncpg's loggers (idempotent; `create_app` calls it too)."""
    access = logging.getLogger("aiohttp.access")  # duplicates our one line per request
    if not any(isinstance(f, _Never) for f in access.filters):
        access.addFilter(_Never())
    for name in _QUIETED:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OneLine) for f in logger.filters):
            logger.addFilter(_OneLine())


Key = tuple[tuple[str, object], ...]


class Sampled:
    """One log line per kind of event per window, however many there were.

    The first event of a kind (its `key`: the fields that tell kinds apart) in a window
    is logged at once with ``count=1``; the others are counted and logged as one line
    with their ``count`` when the window is over (`tick`, the next event, or `flush`).
    """

    def __init__(self, logger: Any, event: str, level: str = "info", window: float = 60.0):
        self._log = getattr(logger, level)
        self._event = event
        self._window = window
        self._current: int | None = None
        self._counts: dict[Key, int] = {}

    def hit(self, now: float, **fields: object) -> None:
        """Count one event at `now` (seconds)."""
        self.tick(now)
        key: Key = tuple(fields.items())
        if key in self._counts:
            self._counts[key] += 1
        else:
            self._counts[key] = 0
            self._log(self._event, count=1, **fields)

    def tick(self, now: float) -> None:
        """Log the counts of a window that is over."""
        window = int(now // self._window)
        if window != self._current:
            self.flush()
            self._current = window

    def flush(self) -> None:
        """Log what was counted and not yet logged."""
        for key, count in self._counts.items():
            if count:
                self._log(self._event, count=count, **dict(key))
        self._counts.clear()
