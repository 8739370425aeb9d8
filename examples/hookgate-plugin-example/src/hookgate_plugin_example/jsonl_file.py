"""The ``jsonl-file`` target: append each delivery to a file, one JSON object a line.

    targets:
      archive:
        type: jsonl-file
        path: /var/lib/hookgate/archive.jsonl

Each line holds ``event_id``, ``delivery_id`` (the idempotency key), ``attempt``,
``source``, ``target``, ``type``, ``received_at`` (ISO 8601), ``headers`` (the outgoing
headers, as ``[[name, value], ...]``, what the target's middleware made of them) and
``body`` (the provider's bytes, in base64). A line is acknowledged once it is written
and fsynced: only then does the file hold it. A line a crash or a failed write cut short
is ended with a newline before the next one is appended (its bytes are kept; a reader
skips the one line that does not parse). A write that fails is retried on the
target's schedule. At least once: a retry after a crash or a timeout, or a replay,
appends another line with the same ``delivery_id``; readers deduplicate on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from gateway.plugin import Message, Outcome, Resources, Section, SendResult, b64, show


@dataclass(frozen=True, slots=True)
class Options:
    path: Path


@dataclass
class JsonlFile:
    """Appends one line per message, in a thread: file writes would block the event loop.

    A `threading.Lock`, not an asyncio one, keeps lines whole: an attempt the relay gives
    up on (its `timeout`) is cancelled, but its thread still finishes the line it writes.
    """

    options: Options
    _file: IO[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, message: Message) -> SendResult:
        line = json.dumps(_fields(message)).encode() + b"\n"
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            return SendResult(Outcome.TARGET_ERROR, error=f"{type(exc).__name__}: {exc}")
        return SendResult(Outcome.ACKED)

    def _append(self, line: bytes) -> None:
        with self._lock:
            if self._file is None:
                created = not self.options.path.exists()
                self._file = self.options.path.open("ab")
                if created:  # the new file's name must survive a crash too
                    _fsync_directory(self.options.path.parent)
                elif _cut_short(self.options.path):  # a crash mid-line: end it, lose nothing
                    self._file.write(b"\n")
            try:
                self._file.write(line)
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError:
                self._close_file()  # the next attempt reopens, ending what this one cut
                raise

    async def aclose(self) -> None:
        """Called once, at shutdown or after a reload replaced this target."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # what it failed to write, it failed to write
                file.close()


def _cut_short(path: Path) -> bool:
    """Whether the file's last line has no newline: a write a crash (or a full disk) cut."""
    with path.open("rb") as existing:
        if existing.seek(0, os.SEEK_END) == 0:
            return False
        existing.seek(-1, os.SEEK_END)
        return existing.read(1) != b"\n"


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fields(message: Message) -> dict[str, Any]:
    return {
        "event_id": str(message.event_id),
        "delivery_id": message.idempotency_key,
        "attempt": message.attempt,
        "source": message.source,
        "target": message.target,
        "type": message.event_type,
        "received_at": message.received_at.isoformat(),
        "headers": [list(pair) for pair in message.headers],
        "body": b64(message.body),
    }


class JsonlFilePlugin:
    """The plugin object the ``target.jsonl-file`` entry point names."""

    kind: Literal["target"] = "target"
    name = "jsonl-file"

    def parse(self, section: Section) -> Options:
        """The file's path: absolute, since serve and worker may start in other directories."""
        path: str = section.text("path")
        if path and not Path(path).is_absolute():
            section.fail(f"expected an absolute path, got {show(path)}", "path")
        return Options(Path(path))

    def create(self, options: Any, resources: Resources) -> JsonlFile:
        return JsonlFile(options)


plugin = JsonlFilePlugin()
