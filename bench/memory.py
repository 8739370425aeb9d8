"""Memory of one ``hookgate serve`` process against its budgets (README.md, Memory), in one run.

What it measures (everything on 127.0.0.1; RSS is VmRSS from /proc/<pid>/status of
the serve process alone, Postgres aside):

1. **oversize**: ``server.max_body: 1MiB``, relay off. After a warm-up of normal
   POSTs, a 100 MiB body goes to ``POST /in/bench`` twice, streamed from a generator
   over a raw socket: once with ``Content-Length``, once chunked without one. For each
   it records what the client saw: the status (if any answer arrived), the body bytes
   the kernel took before the answer and in all, and how the connection ended. RSS is
   sampled every 20 ms meanwhile; budget: it grows by less than 5 MiB. Then
   ``/healthz`` must still answer 200.
2. **sustained**: relay off, the bundled ``bench/loadgen.py`` (64 connections, 1 KiB
   JSON) for ``--load-seconds``; RSS every 0.5 s; budget: peak under 250 MiB.
3. **backlog**: relay on, one target on a closed port (connection refused), retry
   schedule of 1 s steps long enough to outlast the window, concurrency 8, poll
   200 ms. ``--events`` (10,000) then 1,000 events are posted (exactly, by the
   bundled generator), each into a fresh hookgate with its own target name; then RSS
   is sampled every 0.5 s for ``--backlog-seconds``. "Steady" is the median of the
   window's second half. Budget: with 10,000 pending it is within 10% (or 10 MiB)
   of the figure with 1,000 pending. With a server database it also shows the
   deliveries' states and how many attempts the relay made in the window, and
   reports as a problem any delivery left ``in_flight`` after hookgate stopped on
   SIGTERM (it should have finished or released each one it held).

PASS/MISS only prints; nothing fails. The machine is small and shared, so quote the
database and the load average with the figures. "problems" lists anything hookgate
logged at warning level or above, bad exits, and generator failures.

Run: ``.venv/bin/python bench/memory.py [--load-seconds 20] [--backlog-seconds 15]
[--events 10000]``. About a minute; it stops every process it started and drops
the database it created, on errors and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import errno
import json
import os
import select
import signal
import socket
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from loadgen import make_body
from pgdb import Database, bench_database
from procs import Service, bench_main, free_port, get_json, running

BENCH = Path(__file__).resolve().parent
LOADGEN = BENCH / "loadgen.py"
MiB = 1024 * 1024
OVERSIZE = 100 * MiB
CHUNK = 64 * 1024
READY_TIMEOUT = 90.0
UPLOAD_TIMEOUT = 60.0
OVERSIZE_BUDGET = 5 * MiB
PEAK_BUDGET = 250 * MiB
BACKLOG_SMALL = 1000
BACKLOG_SLACK = (0.10, 10 * MiB)  # a fraction of the small figure, or an absolute amount
RETRY_SCHEDULE = ["1s"] * 30  # 31 attempts: each delivery stays pending through the window


@dataclass
class Bench:
    """What every phase of one run shares."""

    args: argparse.Namespace
    tmp: Path
    db: Database
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def row(self, check: str, figure: str, budget: str = "", verdict: str = "") -> None:
        self.rows.append((check, figure, budget, verdict))


@dataclass(frozen=True)
class Gate:
    """A running hookgate: its base URL, port and process id."""

    base: str
    port: int
    pid: int


@dataclass(frozen=True)
class Upload:
    """What the client saw sending one oversize body."""

    mode: str
    status: int | None
    answered_after: float | None  # seconds from connecting to the first byte of the answer
    sent_before_answer: int | None  # body bytes the kernel took before the answer arrived
    sent: int  # body bytes (chunk framing included) the kernel took in all
    seconds: float  # until the connection ended (or the client gave up)
    ending: str


@dataclass
class Transfer:
    """One oversize upload in progress."""

    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    response: bytearray = field(default_factory=bytearray)
    answered_at: float | None = None
    sent_before_answer: int | None = None
    done: bool = False  # the whole body was taken

    def got(self, data: bytes) -> None:
        if self.answered_at is None:
            self.answered_at, self.sent_before_answer = time.monotonic(), self.sent
        self.response += data


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--backlog-seconds", type=float, default=15.0)
    parser.add_argument("--events", type=int, default=10_000, help="the large backlog")
    return parser.parse_args()


def progress(message: str) -> None:
    print(f".. {message}", file=sys.stderr, flush=True)


def mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# -- RSS ------------------------------------------------------------------------------


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in bytes."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024
    return found


def rss(pid: int) -> int:
    return memory(pid)["VmRSS"]


@contextmanager
def sampling(pid: int, interval: float) -> Iterator[list[int]]:
    """RSS of `pid` every `interval` seconds in a thread, while the block runs."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while True:
            try:
                samples.append(rss(pid))
            except (OSError, KeyError):
                return  # the process is gone
            if stop.wait(interval):
                return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(5)


def sample_for(pid: int, seconds: float, interval: float = 0.5) -> list[int]:
    with sampling(pid, interval) as samples:
        time.sleep(seconds)
    return samples


# -- hookgate -------------------------------------------------------------------------


def hookgate_config(
    db: Database, port: int, relay: dict[str, Any], name: str, target: dict[str, Any]
) -> dict[str, Any]:
    database: dict[str, Any] = {"data_dir": str(db.data_dir)}
    if db.url:
        database["url"] = db.url
    return {
        "database": database,
        "server": {"host": "127.0.0.1", "port": port, "max_body": "1MiB"},
        "relay": relay,
        "sources": {"bench": {"event_type": "json:type"}},
        "targets": {name: target},
        "routes": [{"source": "bench", "targets": [name]}],
    }


def hookgate_command(config: Path) -> list[str]:
    script = Path(sys.executable).with_name("hookgate")
    start = [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]
    return [*start, "--log-level", "warning", "serve", "--config", str(config)]


@contextmanager
def hookgate(
    bench: Bench, phase: str, relay: dict[str, Any], target: dict[str, Any]
) -> Iterator[Gate]:
    """A ready `hookgate serve`; records a crash, a bad exit or warnings after."""
    port = free_port()
    config = bench.tmp / f"{phase}.yaml"
    name, options = target["name"], {k: v for k, v in target.items() if k != "name"}
    settings = hookgate_config(bench.db, port, relay, name, options)
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    with running(f"hookgate ({phase})", hookgate_command(config), bench.tmp / f"{phase}.log") as hg:
        started = time.monotonic()
        hg.wait_ready(f"http://127.0.0.1:{port}/readyz", READY_TIMEOUT)
        progress(f"hookgate ({phase}) ready in {time.monotonic() - started:.1f} s")
        yield Gate(f"http://127.0.0.1:{port}", port, hg.process.pid)
        crashed = not hg.alive()
        code = hg.stop()
    report_exit(bench, hg, crashed, code)


def report_exit(bench: Bench, hg: Service, crashed: bool, code: int) -> None:
    if crashed:
        bench.problems.append(f"{hg.name} died during the phase (exit {code})")
    elif code not in (0, -signal.SIGTERM):
        bench.problems.append(f"{hg.name} exited with {code}")
    if output := hg.tail(40).strip():
        bench.problems.append(
            f"{hg.name} logged at warning level and up (last 40 lines):\n{output}"
        )


def parked_target() -> dict[str, Any]:
    return {"name": "parked", "url": "http://127.0.0.1:9/"}  # relay off: never contacted


def run_loadgen(bench: Bench, name: str, url: str, extra: list[str], timeout: float) -> Any:
    """The bundled generator (64 connections, 1 KiB) in a subprocess: its JSON report."""
    command = [sys.executable, str(LOADGEN), url, *extra]
    command += ["--connections", "64", "--body-size", "1024"]
    with running(name, command, bench.tmp / f"{name}.log") as gen:
        deadline = time.monotonic() + timeout
        while gen.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        return loadgen_report(bench, gen)


def loadgen_report(bench: Bench, gen: Service) -> dict[str, Any] | None:
    try:
        report: dict[str, Any] = json.loads(gen.tail(1))
    except ValueError:
        bench.problems.append(f"{gen.name} failed or timed out:\n{gen.tail()}")
        return None
    others = {code: n for code, n in report["statuses"].items() if code != "202"}
    if others or report["errors"]:
        bench.problems.append(f"{gen.name}: non-202 {others}, errors {report['errors']}")
    return report


# -- 1. oversize body -----------------------------------------------------------------


def body_stream(total: int, chunked: bool) -> Iterator[bytes]:
    """`total` bytes in CHUNK pieces, framed for chunked transfer coding if asked."""
    piece = b"x" * CHUNK
    for _ in range(total // CHUNK):
        yield b"%x\r\n%s\r\n" % (CHUNK, piece) if chunked else piece
    if chunked:
        yield b"0\r\n\r\n"


def request_head(port: int, chunked: bool) -> bytes:
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {OVERSIZE}"
    return (
        f"POST /in/bench HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{length}\r\n\r\n"
    ).encode()


def answer_status(response: bytes) -> int | None:
    if not response.startswith(b"HTTP/1.") or len(response) < 12:
        return None
    return int(response[9:12])


def send_oversize(port: int, chunked: bool) -> Upload:
    """Stream 100 MiB at `port` until the server closes, all is sent, or time is up."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    transfer = Transfer()
    try:
        ending = pump(sock, transfer, request_head(port, chunked), chunked)
    finally:
        sock.close()
    t = transfer
    return Upload(
        mode="chunked, no length" if chunked else "Content-Length",
        status=answer_status(bytes(t.response)),
        answered_after=None if t.answered_at is None else t.answered_at - t.started,
        sent_before_answer=t.sent_before_answer,
        sent=t.sent,
        seconds=time.monotonic() - t.started,
        ending=ending,
    )


def pump(sock: socket.socket, t: Transfer, head: bytes, chunked: bool) -> str:
    """Send the head and body while reading the answer; how the connection ended."""
    stream = body_stream(OVERSIZE, chunked)
    pending: memoryview | None = memoryview(head)
    head_left, deadline = len(head), t.started + UPLOAD_TIMEOUT
    while time.monotonic() < deadline:
        readable, writable, _ = select.select([sock], [sock] if pending else [], [], 0.5)
        if readable and (ending := receive(sock, t)):
            return ending
        if writable and pending is not None:
            try:
                n = sock.send(pending)
            except OSError as exc:
                drain(sock, t)
                return f"send failed: {errno.errorcode.get(exc.errno or 0, exc)}"
            t.sent += max(0, n - head_left)
            head_left = max(0, head_left - n)
            pending = pending[n:] or next_piece(stream)
            if pending is None:  # all taken: wait a little for the answer and the close
                t.done, deadline = True, min(deadline, time.monotonic() + 5)
    return f"{'all sent, still open' if t.done else 'gave up'} after {UPLOAD_TIMEOUT:g} s"


def next_piece(stream: Iterator[bytes]) -> memoryview | None:
    piece = next(stream, None)
    return None if piece is None else memoryview(piece)


def receive(sock: socket.socket, t: Transfer) -> str:
    """Read what is there; how the connection ended, or '' if it is still open."""
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return ""
    except OSError as exc:
        return f"recv failed: {errno.errorcode.get(exc.errno or 0, exc)}"
    if not data:
        whole = "after the whole body" if t.done else "before the body was all sent"
        return f"server closed (EOF) {whole}"
    t.got(data)
    return ""


def drain(sock: socket.socket, t: Transfer) -> None:
    """Read what the server still had for us after a failed send (a 413 may be there)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and select.select([sock], [], [], 0.2)[0]:
        if receive(sock, t):
            return


def warm_up(gate: Gate, count: int) -> int:
    """POST `count` normal 1 KiB events one by one; how many got 202."""
    ok = 0
    for _ in range(count):
        request = urllib.request.Request(
            f"{gate.base}/in/bench", make_body(1024), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            ok += response.status == 202
    return ok


def measure_oversize(bench: Bench) -> None:
    with hookgate(bench, "oversize", {"enabled": False}, parked_target()) as gate:
        warmed = warm_up(gate, 50)
        time.sleep(0.5)
        before = memory(gate.pid)
        with sampling(gate.pid, 0.02) as samples:
            uploads = [send_oversize(gate.port, chunked) for chunked in (False, True)]
            time.sleep(1.0)
        after = memory(gate.pid)
        health = health_status(gate)
    report_oversize(bench, warmed, before, after, samples, uploads, health)


def upload_note(up: Upload, status: object) -> str:
    if up.answered_after is None or up.sent_before_answer is None:
        answer = "no answer"
    else:
        answer = f"answer after {up.answered_after:.2f} s and {mib(up.sent_before_answer)}"
    return (
        f"oversize ({up.mode}): status {status}; {answer}; body bytes taken in all "
        f"{up.sent:,}; {up.ending}, {up.seconds:.2f} s after connecting"
    )


def health_status(gate: Gate) -> str:
    try:
        return str(get_json(f"{gate.base}/healthz", timeout=3)[0])
    except OSError as exc:
        return f"no answer ({exc})"


def report_oversize(
    bench: Bench,
    warmed: int,
    before: dict[str, int],
    after: dict[str, int],
    samples: list[int],
    uploads: list[Upload],
    health: str,
) -> None:
    for up in uploads:
        refused = up.status == 413 or (up.status is None and up.sent < OVERSIZE)
        status = up.status if up.status is not None else "no answer"
        bench.row(
            f"100 MiB body, {up.mode}", f"{status}, {mib(up.sent)} sent", "413", verdict(refused)
        )
        bench.notes.append(upload_note(up, status))
    peak = max([*samples, after["VmRSS"]])
    growth, peak_growth = after["VmRSS"] - before["VmRSS"], peak - before["VmRSS"]
    figure = f"{growth / MiB:+.1f} MiB (peak {peak_growth / MiB:+.1f})"
    bench.row("RSS growth, both uploads", figure, "< 5 MiB", verdict(peak_growth < OVERSIZE_BUDGET))
    bench.row("/healthz afterwards", health, "200", verdict(health == "200"))
    bench.notes.append(
        f"oversize: {warmed}/50 warm-up POSTs got 202; RSS {mib(before['VmRSS'])} before, "
        f"{mib(after['VmRSS'])} after, {mib(peak)} peak of {len(samples)} samples (20 ms); "
        f"VmHWM {mib(before['VmHWM'])} -> {mib(after['VmHWM'])}"
    )


# -- 2. sustained load ----------------------------------------------------------------


def measure_sustained(bench: Bench) -> None:
    seconds = bench.args.load_seconds
    with hookgate(bench, "sustained", {"enabled": False}, parked_target()) as gate:
        idle = rss(gate.pid)
        progress(f"sustained: {seconds:g} s of 64 connections")
        extra = ["--duration", str(seconds), "--warmup", "0"]
        with sampling(gate.pid, 0.5) as samples:
            report = run_loadgen(
                bench, "loadgen-sustained", f"{gate.base}/in/bench", extra, seconds + 40
            )
        hwm = memory(gate.pid)["VmHWM"]
    peak = max([*samples, idle])
    bench.row("sustained load, peak RSS", mib(peak), "< 250 MiB", verdict(peak < PEAK_BUDGET))
    rate = f"{report['ok']:,} x 202, {report['rps']:,.0f} req/s" if report else "generator failed"
    bench.notes.append(
        f"sustained: RSS {mib(idle)} idle, {mib(peak)} peak of {len(samples)} samples (0.5 s), "
        f"{mib(samples[-1] if samples else idle)} at the end, VmHWM {mib(hwm)}; {rate}"
    )


# -- 3. dead target backlog -----------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    events: int
    after_ingest: int
    steady: int
    peak: int
    states_before: dict[str, int] | None
    states_after: dict[str, int] | None


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port held (bound, never listening) for the block: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def dead_target(events: int, port: int) -> dict[str, Any]:
    return {
        "name": f"dead{events}_{os.getpid()}",  # this phase's own rows, nobody else's
        "url": f"http://127.0.0.1:{port}/hooks",
        "timeout": "5s",
        "concurrency": 8,
        "retry": {"schedule": RETRY_SCHEDULE},
        # Keep the relay working through the backlog: an open breaker would idle it.
        "breaker": False,
    }


def measure_backlog(bench: Bench, events: int) -> Backlog:
    relay = {"enabled": True, "poll_interval": "200ms"}
    with closed_port() as port:
        target = dead_target(events, port)
        with hookgate(bench, f"backlog-{events}", relay, target) as gate:
            progress(f"backlog: posting {events:,} events")
            extra = ["--requests", str(events), "--timeout", "120"]
            run_loadgen(bench, f"loadgen-{events}", f"{gate.base}/in/bench", extra, 150)
            after_ingest = rss(gate.pid)
            before = delivery_states(bench.db, target["name"])
            progress(f"backlog: sampling RSS for {bench.args.backlog_seconds:g} s")
            samples = sample_for(gate.pid, bench.args.backlog_seconds)
            after = delivery_states(bench.db, target["name"])
    check_released(bench, target["name"])
    steady = int(statistics.median(samples[len(samples) // 2 :]))
    return Backlog(events, after_ingest, steady, max(samples), before, after)


def check_released(bench: Bench, target: str) -> None:
    """After a graceful stop, none of the target's deliveries may stay in flight."""
    states = delivery_states(bench.db, target)
    if states and states.get("in_flight"):
        bench.problems.append(
            f"{states['in_flight']} deliveries of {target} still in_flight after hookgate "
            "stopped on SIGTERM (neither finished nor released: they wait out the lease)"
        )


def delivery_states(db: Database, target: str) -> dict[str, int] | None:
    """Deliveries of `target` by status and last outcome, and their attempts in all;
    None on the embedded server (no URL to ask)."""
    if db.url is None:
        return None
    return asyncio.run(_states(db.url, target))


async def _states(url: str, target: str) -> dict[str, int]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT status, last_outcome, count(*) AS n, sum(attempts) AS attempts "
            "FROM hookgate.deliveries WHERE target = $1 GROUP BY status, last_outcome",
            target,
            timeout=10,
        )
    finally:
        await conn.close()
    states: collections.Counter[str] = collections.Counter()
    for row in rows:
        states[row["status"]] += row["n"]
        states[f"last {row['last_outcome']}"] += row["n"]
        states["attempts"] += row["attempts"]
    return dict(states)


def report_backlog(bench: Bench, large: Backlog, small: Backlog) -> None:
    fraction, absolute = BACKLOG_SLACK
    growth = large.steady - small.steady
    ok = growth < max(absolute, fraction * small.steady)
    for b in (small, large):
        bench.row(f"relay steady RSS, {b.events:,} pending", mib(b.steady))
        bench.notes.append(backlog_note(b))
    figure = f"{growth / MiB:+.1f} MiB ({growth / small.steady:+.1%})"
    bench.row("  difference", figure, "< 10 MiB or 10%", verdict(ok))


def backlog_note(b: Backlog) -> str:
    note = (
        f"backlog {b.events:,}: RSS {mib(b.after_ingest)} after ingest, "
        f"{mib(b.steady)} steady, {mib(b.peak)} peak in the window"
    )
    if b.states_before is None or b.states_after is None:
        return note + "; delivery states n/a (embedded database)"
    made = b.states_after["attempts"] - b.states_before["attempts"]
    states = f"{show_states(b.states_before)} -> {show_states(b.states_after)}"
    return f"{note}; {made:,} attempts in the window; states {states}"


def show_states(states: dict[str, int]) -> str:
    shown = sorted((k, v) for k, v in states.items() if k != "attempts" and k != "last None")
    return ", ".join(f"{k} {v:,}" for k, v in shown)


# -- report and main ------------------------------------------------------------------


def print_report(bench: Bench) -> None:
    print("\nhookgate memory benchmark (RSS of the serve process, Postgres aside)")
    print(f"database: {bench.db.label}")
    print(f"machine:  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end\n")
    widths = [max(len(row[i]) for row in bench.rows) for i in range(3)]
    header = ("check", "figure", "budget", "verdict")
    for row in [header, *bench.rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, [*widths, 0], strict=True)).rstrip())
    print()
    for note in bench.notes:
        print(f"- {note}")
    print("\nproblems:" + ("" if bench.problems else " none"))
    for problem in bench.problems:
        print(f"  - {problem}")


def run(args: argparse.Namespace, tmp: Path) -> None:
    with bench_database(tmp) as db:
        bench = Bench(args, tmp, db)
        progress(f"database: {db.label}")
        measure_oversize(bench)
        measure_sustained(bench)
        large = measure_backlog(bench, args.events)
        small = measure_backlog(bench, BACKLOG_SMALL)
        report_backlog(bench, large, small)
    print_report(bench)


def main() -> int:
    return bench_main(run, parse_args(), "hookgate-memory-")


if __name__ == "__main__":
    sys.exit(main())
