"""structlog set-up: context variables, level, ISO UTC time; JSON unless on a terminal.

JSON lines written from inside a running event loop are gathered and written once per
loop iteration (one system call for every line logged meanwhile, in order), so a busy
server does not pay a write per request; outside a loop each line is written at once.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys

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

    def write(self, data: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write_out()
            self._out.write(data)
            return
        if not self._lines:
            loop.call_soon(self.write_out)
        self._lines.append(data)

    def flush(self) -> None:
        """Nothing to do: a line waits at most until the loop's current iteration ends."""

    def write_out(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._out.write(b"".join(lines))
            self._out.flush()


def configure(level: str = "info", json: bool | None = None) -> None:
    """Configure structlog (and route stdlib logging through the same output)."""
    if json is None:
        json = not sys.stderr.isatty()
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    if json:
        # orjson renders a line several times faster than json: this runs for every request.
        processors.append(structlog.processors.JSONRenderer(serializer=orjson.dumps))
        gathered = _Gathered(_Stderr())
        atexit.register(gathered.write_out)  # what the last loop iteration left
        factory: structlog.typing.WrappedLogger = structlog.BytesLoggerFactory(gathered)  # type: ignore[arg-type]
    else:
        processors.append(structlog.dev.ConsoleRenderer())
        factory = structlog.PrintLoggerFactory(_Stderr())  # type: ignore[arg-type]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
    # aiohttp's own access log would duplicate our one line per request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
