"""A closed-loop HTTP/1.1 POST load generator, bundled for machines without wrk.

Each of ``--connections`` keep-alive connections sends one request, waits for the
whole response, records its latency, and sends the next: like ``wrk``, it measures
what a fixed number of busy clients get, not an open arrival rate.

It speaks raw HTTP/1.1 over an ``asyncio.Protocol`` on uvloop instead of using
``aiohttp.ClientSession``: the client costs ~15 µs of CPU per request instead of
~100 µs, so on a 2-core machine it leaves the server (and Postgres) more CPU and
saturates a bare aiohttp app instead of measuring itself. It expects answers with a
``Content-Length`` (aiohttp always sends one for ``json_response``).

Two modes, both printing one JSON object on stdout:

* ``--duration S [--warmup W]``: load for W + S seconds, report only the last S.
* ``--requests N``: send exactly N requests, report when the first was sent and the
  last answered (wall clock, comparable across processes), for end-to-end timing.

Run it in its own process so it never shares an event loop with what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit


def make_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least the fixed part) with a `type`."""
    head, tail = b'{"type":"bench.ping","data":"', b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def make_request(url: str, body: bytes) -> tuple[str, int, bytes]:
    """The host, port and complete bytes of one POST of `body` to `url`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return host, port, head.encode() + body


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list; NaN when it is empty."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@dataclass
class Run:
    """What to send, when to stop, and what came back."""

    request: bytes
    expect: int
    stop_at: float  # monotonic; no new request after it
    measure_from: float  # monotonic; answers before it are warm-up
    remaining: int | None = None  # a fixed number of requests, or None
    latencies: list[float] = field(default_factory=list)  # seconds, expected status only
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    first_sent: float | None = None  # wall clock
    last_done: float | None = None  # wall clock

    def take(self) -> bool:
        """Whether one more request may be sent now (and count it if so)."""
        if time.monotonic() >= self.stop_at or self.remaining == 0:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        if self.first_sent is None:
            self.first_sent = time.time()
        self.in_flight += 1
        return True

    def record(self, status: int, started: float, done: float) -> None:
        self.in_flight -= 1
        if done < self.measure_from:
            return
        self.statuses[status] += 1
        self.last_done = time.time()
        if status == self.expect:
            self.latencies.append(done - started)


class Client(asyncio.Protocol):
    """One keep-alive connection sending requests back to back."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.buffer = bytearray()
        self.started = 0.0
        self.waiting = False  # a request is out and its answer not complete
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        if not self.run.take():
            self.transport.close()
            return
        self.waiting = True
        self.started = time.monotonic()
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            while (status := self.parse_response()) is not None:
                self.waiting = False
                self.run.record(status, self.started, time.monotonic())
                self.send()
        except ValueError:
            self.fail("bad_response")

    def parse_response(self) -> int | None:
        """The status of the complete response at the head of the buffer, removing it."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).lower() + b"\r\n"
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            raise ValueError("response without Content-Length")
        length = int(head[start + 17 : head.find(b"\r\n", start + 2)])
        if len(self.buffer) < end + 4 + length:
            return None
        del self.buffer[: end + 4 + length]
        return int(head[9:12])

    def fail(self, reason: str) -> None:
        """Count the unanswered request as an error and drop the connection."""
        if self.waiting:
            self.waiting = False
            self.run.in_flight -= 1
            self.run.errors[reason] += 1
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail("connection_lost")
        if not self.closed.done():
            self.closed.set_result(None)


async def connection_loop(run: Run, host: str, port: int) -> None:
    """Keep one connection busy until the run stops, reconnecting if it is lost."""
    loop = asyncio.get_running_loop()
    while time.monotonic() < run.stop_at and run.remaining != 0:
        try:
            _, client = await loop.create_connection(lambda: Client(run), host, port)
        except OSError as exc:
            run.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
            continue
        try:
            await client.closed
        except asyncio.CancelledError:
            client.fail("timeout")
            raise


async def drive(run: Run, host: str, port: int, connections: int, deadline: float) -> None:
    """Run every connection until done, `deadline` (monotonic) or SIGTERM, then stop."""
    tasks = [asyncio.create_task(connection_loop(run, host, port)) for _ in range(connections)]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    waiters = [asyncio.ensure_future(asyncio.gather(*tasks)), asyncio.create_task(stop.wait())]
    timeout = max(0.0, deadline - time.monotonic())
    await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in [*tasks, *waiters]:
        task.cancel()
    await asyncio.gather(*tasks, *waiters, return_exceptions=True)
    if run.in_flight > 0:  # answers lost without a connection to blame
        run.errors["unaccounted"] += run.in_flight


def summary(run: Run, seconds: float) -> dict[str, object]:
    """The JSON report: successes per second and latency of successes, in ms."""
    latencies = sorted(run.latencies)
    ok = run.statuses[run.expect]
    return {
        "generator": "python",
        "requests": sum(run.statuses.values()),
        "ok": ok,
        "statuses": {str(code): n for code, n in sorted(run.statuses.items())},
        "errors": dict(run.errors),
        "seconds": seconds,
        "rps": ok / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "first_sent": run.first_sent,
        "last_done": run.last_done,
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    host, port, request = make_request(args.url, make_body(args.body_size))
    now = time.monotonic()
    if args.requests is not None:
        run = Run(request, args.expect, now + args.timeout, now, remaining=args.requests)
        await drive(run, host, port, args.connections, now + args.timeout)
        seconds = (run.last_done or time.time()) - (run.first_sent or time.time())
        return summary(run, seconds)
    stop_at = now + args.warmup + args.duration
    run = Run(request, args.expect, stop_at, now + args.warmup)
    await drive(run, host, port, args.connections, stop_at + args.timeout)
    return summary(run, args.duration)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--body-size", type=int, default=1024)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--requests", type=int, help="send exactly this many, then stop")
    parser.add_argument("--expect", type=int, default=202, help="the status that counts as ok")
    parser.add_argument("--timeout", type=float, default=10.0, help="grace for the last answers")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(main_async(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
