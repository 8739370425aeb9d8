"""Subprocesses that always stop: start, wait until ready, terminate, then kill.

Every server in the benchmark is a ``Service``: a ``Popen`` in its own session (so a
Ctrl-C in the terminal reaches only the benchmark, which then stops them in order),
with stdout and stderr in a log file that is shown when something went wrong.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """GET `url` on loopback: its status and decoded JSON body (None if not JSON)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, url: str, timeout: float) -> None:
        """Poll `url` until it answers 200; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited ({self.process.returncode}):\n{self.tail()}"
                )
            try:
                if get_json(url, timeout=1.0)[0] == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:g}s:\n{self.tail()}")

    def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL; the exit code."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@contextmanager
def running(name: str, command: Sequence[str], log: Path) -> Iterator[Service]:
    """Start `command` with its output in `log`; stop it however the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(name, process, log)
    try:
        yield service
    finally:
        service.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def bench_main(
    run: Callable[[argparse.Namespace, Path], None], args: argparse.Namespace, prefix: str
) -> int:
    """Run a benchmark in a temporary directory: a SIGTERM stops it as a Ctrl-C does
    (servers stopped, database dropped, exit 130), and the whole run's time is printed."""
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            run(args, Path(tmp))
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, database dropped", file=sys.stderr)
        return 130
    print(f"\nwhole run: {time.monotonic() - started:.1f} s")
    return 0
