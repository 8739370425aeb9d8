"""Durable ingest throughput of hookgate against a bare aiohttp app, in one run.

What it measures (everything on 127.0.0.1, every server in its own process):

1. **bare**: ``bench/bare.py`` (aiohttp + uvloop, one process) reads each body and
   answers ``202 {"id": ...}``: the ceiling for a single-process aiohttp service here.
2. **hookgate**: ``hookgate serve`` with the relay off, a fresh database, one source
   and one route; each 202 means the event and its delivery are committed.
   Both get the same load: ``--connections`` keep-alive clients posting
   ``--body-size``-byte JSON back to back for ``--duration`` seconds after a warm-up.
   Only 202s count as successes (req/s, p50, p99); anything else is reported.
3. **end-to-end**: ``hookgate serve`` with the relay on, delivering to
   ``bench/sink.py`` (target concurrency ``--e2e-concurrency``); ``--e2e-events``
   POSTs as fast as the bundled generator can, then the time until the sink has seen
   every accepted event once, and how many it saw twice. It gives up, as a problem,
   if the sink sees nothing new for 15 s.

How to read it: the machine is small (2 cores) and shared, so absolute req/s move
from run to run; the **ratio hookgate/bare from the same run** is the figure the
ingest budget is about (>= 0.6, p99 < 25 ms at 64 connections), with hookgate
at its default log level (``--log-level``, default ``info``: one line per request). PASS/MISS
lines only print; nothing fails. The load generator shares the 2 cores with the
server (and Postgres), so quote which one was used (wrk when installed, else the
bundled one) along with the figures. wrk's p99 covers every answer; the bundled
one's only the 202s. "problems" lists non-202s, connection errors, a hookgate that
crashed or ignored SIGTERM, and anything hookgate logged at warning level or above.

Run: ``.venv/bin/python bench/ingest.py [--duration 10] [--connections 64]
[--body-size 1024] [--e2e-events 5000] [--e2e-concurrency 32]
[--generator auto|wrk|python] [--log-level info|warning]``. It takes about a minute
and cleans up after itself (servers stopped, the database it created dropped), on
Ctrl-C too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from generators import Load, choose, describe, python_command, run_load
from pgdb import Database, bench_database
from procs import Service, bench_main, free_port, get_json, running

BENCH = Path(__file__).resolve().parent
RATIO_BUDGET = 0.6
P99_BUDGET_MS = 25.0
READY_TIMEOUT = 90.0  # the embedded server's first initdb can take a while
STALL_SECONDS = 15.0  # the end-to-end run gives up when the sink sees nothing new this long


@dataclass
class Bench:
    """What every phase of one run shares."""

    args: argparse.Namespace
    tmp: Path
    load: Load
    generator: str
    db: Database
    problems: list[str] = field(default_factory=list)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--body-size", type=int, default=1024, help="bytes of JSON per POST")
    parser.add_argument("--e2e-events", type=int, default=5000, help="0 skips end-to-end")
    parser.add_argument(
        "--e2e-concurrency", type=int, default=32, help="the sink target's concurrency"
    )
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--log-level",
        choices=["info", "warning"],
        default="info",
        help="hookgate's; info is its default",
    )
    return parser.parse_args()


def progress(message: str) -> None:
    print(f".. {message}", file=sys.stderr, flush=True)


# -- hookgate -------------------------------------------------------------------------


def hookgate_config(
    db: Database, port: int, relay: bool, target: str, url: str, concurrency: int
) -> dict[str, Any]:
    database: dict[str, Any] = {"data_dir": str(db.data_dir)}
    if db.url:
        database["url"] = db.url
    return {
        "database": database,
        "server": {"host": "127.0.0.1", "port": port, "max_body": "1MiB"},
        "relay": {"enabled": relay},
        "sources": {"bench": {"event_type": "json:type"}},
        "targets": {target: {"url": url, "concurrency": concurrency}},
        "routes": [{"source": "bench", "targets": [target]}],
    }


def hookgate_command(config: Path, level: str) -> list[str]:
    script = Path(sys.executable).with_name("hookgate")
    start = [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]
    return [*start, "--log-level", level, "serve", "--config", str(config)]


@contextmanager
def hookgate(bench: Bench, phase: str, relay: bool, target: str, url: str) -> Iterator[str]:
    """A ready `hookgate serve`; yields its base URL and checks its health after."""
    port = free_port()
    config = bench.tmp / f"{phase}.yaml"
    concurrency = bench.args.e2e_concurrency
    settings = hookgate_config(bench.db, port, relay, target, url, concurrency)
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    with running(
        f"hookgate ({phase})",
        hookgate_command(config, bench.args.log_level),
        bench.tmp / f"{phase}.log",
    ) as hg:
        started = time.monotonic()
        hg.wait_ready(f"http://127.0.0.1:{port}/readyz", READY_TIMEOUT)
        progress(f"hookgate ({phase}) ready in {time.monotonic() - started:.1f} s")
        yield f"http://127.0.0.1:{port}"
        crashed = not hg.alive()
        code = hg.stop()
    report_hookgate_exit(bench, hg, crashed, code)


def report_hookgate_exit(bench: Bench, hg: Service, crashed: bool, code: int) -> None:
    """Record a crash or a bad exit, and whatever hookgate wrote (warning level and up)."""
    if crashed:
        bench.problems.append(f"{hg.name} died during the load (exit {code})")
    elif code not in (0, -signal.SIGTERM):
        killed = "; it ignored SIGTERM and was killed" if code == -signal.SIGKILL else ""
        bench.problems.append(f"{hg.name} exited with {code}{killed}")
    output = "\n".join(line for line in hg.tail(4000).splitlines() if _loud(line))
    output = "\n".join(output.splitlines()[-40:])
    if output.strip():
        bench.problems.append(
            f"{hg.name} output at warning level and up (last 40 lines):\n{output}"
        )
    elif crashed or code not in (0, -signal.SIGTERM):
        bench.problems.append(f"{hg.name} wrote nothing at warning level or above")


def _loud(line: str) -> bool:
    """A log line at warning level or above, or anything that is not a log line."""
    try:
        return json.loads(line).get("level") not in ("debug", "info")
    except (ValueError, AttributeError):
        return bool(line.strip())


def check_report(bench: Bench, name: str, report: dict[str, Any]) -> None:
    """Record anything but a 202, and connection errors, as a problem."""
    others = {code: n for code, n in report["statuses"].items() if code != "202"}
    if others or report["errors"]:
        bench.problems.append(
            f"{name}: non-202 {others or '{}'}, errors {report['errors'] or '{}'}"
        )


# -- the phases -----------------------------------------------------------------------


def measure_bare(bench: Bench) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, str(BENCH / "bare.py"), "--port", str(port)]
    with running("bare", command, bench.tmp / "bare.log") as bare:
        bare.wait_ready(f"http://127.0.0.1:{port}/healthz", 30)
        progress(f"bare: {bench.load.warmup:g} s warm-up + {bench.load.duration:g} s")
        report = run_load(
            bench.generator, f"http://127.0.0.1:{port}/in/bench", bench.load, bench.tmp
        )
    check_report(bench, "bare", report)
    return report


def measure_hookgate(bench: Bench) -> dict[str, Any]:
    # Relay off; the target is never contacted, its deliveries just stay pending.
    with hookgate(bench, "ingest", relay=False, target="parked", url="http://127.0.0.1:9/") as base:
        progress(f"hookgate: {bench.load.warmup:g} s warm-up + {bench.load.duration:g} s")
        report = run_load(bench.generator, f"{base}/in/bench", bench.load, bench.tmp)
    check_report(bench, "hookgate", report)
    return report


def measure_e2e(bench: Bench) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The generator's report and the sink's final stats for `--e2e-events` events."""
    port = free_port()
    sink_command = [sys.executable, str(BENCH / "sink.py"), "--port", str(port)]
    # A target name of this run only: the ingest phase's rows (or an earlier run's, in
    # a shared HOOKGATE_BENCH_DATABASE_URL) belong to other targets and are never claimed.
    target = f"sink_{os.getpid()}"
    with running("sink", sink_command, bench.tmp / "sink.log") as sink:
        stats_url = f"http://127.0.0.1:{port}/stats"
        sink.wait_ready(stats_url, 30)
        with hookgate(bench, "e2e", True, target, f"http://127.0.0.1:{port}/hooks") as base:
            progress(f"end-to-end: {bench.args.e2e_events} events")
            result = send_and_wait(bench, f"{base}/in/bench", stats_url)
    return result


def send_and_wait(bench: Bench, url: str, stats_url: str) -> tuple[dict[str, Any] | None, Any]:
    """Post the events, then poll the sink until it has every accepted one.

    Gives up, recording a problem, when the sink has not moved for `STALL_SECONDS`
    (hookgate stuck) or the whole thing takes longer than `timeout` plus a minute.
    """
    events = bench.args.e2e_events
    timeout = max(60.0, events / 50)
    command = python_command(url, bench.load, events, timeout)
    report, seen, moved = None, -1, time.monotonic()
    deadline = moved + timeout + 60
    with running("loadgen (e2e)", command, bench.tmp / "e2e-loadgen.log") as gen:
        while time.monotonic() - moved < STALL_SECONDS and time.monotonic() < deadline:
            if report is None and not gen.alive():
                if (report := generator_report(bench, gen)) is None:
                    return None, get_json(stats_url)[1]
                moved = time.monotonic()
            stats = get_json(stats_url)[1]
            if report is not None and stats["unique"] >= report["ok"]:
                time.sleep(1.0)  # let a late duplicate show up
                return report, get_json(stats_url)[1]
            if stats["unique"] != seen:
                seen, moved = stats["unique"], time.monotonic()
            time.sleep(0.05)
        note_stall(bench, url, seen, time.monotonic() - moved, report)
        if report is None:
            gen.stop()  # on SIGTERM it still prints what it got so far
            report = generator_report(bench, gen)
    return report, get_json(stats_url)[1]


def note_stall(
    bench: Bench, url: str, seen: int, stalled: float, report: dict[str, Any] | None
) -> None:
    """Record that delivery stopped moving, and whether hookgate still answers at all."""
    health = url.rsplit("/in/", 1)[0] + "/healthz"
    try:
        answer = f"answered {get_json(health, timeout=3)[0]}"
    except OSError as exc:
        answer = f"did not answer ({exc})"
    sent = "still sending" if report is None else f"{report['ok']} accepted"
    bench.problems.append(
        f"end-to-end gave up: the sink had {max(seen, 0)} deliveries, none new for "
        f"{stalled:.0f} s (generator: {sent}); hookgate /healthz {answer}"
    )


def generator_report(bench: Bench, gen: Service) -> dict[str, Any] | None:
    """The JSON report on the generator's last line; None (and a problem) if it crashed."""
    try:
        report: dict[str, Any] = json.loads(gen.tail(1))
    except ValueError:
        bench.problems.append(f"end-to-end load generator failed:\n{gen.tail()}")
        return None
    check_report(bench, "end-to-end ingest", report)
    return report


# -- the report -----------------------------------------------------------------------


def budget(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_header(bench: Bench) -> None:
    load = bench.load
    print(
        f"\nhookgate ingest benchmark: {load.connections} connections, {load.body_size}-byte "
        f"JSON bodies, {load.duration:g} s measured after {load.warmup:g} s warm-up"
    )
    print(f"load generator: {describe(bench.generator)}")
    print(f"hookgate:       log level {bench.args.log_level}")
    print(f"database:       {bench.db.label}")
    print(
        f"machine:        {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end\n"
    )


def print_table(bare: dict[str, Any], hg: dict[str, Any]) -> None:
    print(f"{'':14}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-202':>9}{'errors':>8}")
    for name, r in (("bare aiohttp", bare), ("hookgate", hg)):
        non_202 = r["requests"] - r["ok"]
        errors = sum(r["errors"].values())
        print(
            f"{name:14}{r['rps']:>10,.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{non_202:>9}{errors:>8}"
        )
    ratio = hg["rps"] / bare["rps"] if bare["rps"] else math.nan
    print(f"\nratio hookgate/bare req/s: {ratio:.3f}")
    print(f"budget ratio >= {RATIO_BUDGET}:   {budget(ratio >= RATIO_BUDGET)} ({ratio:.3f})")
    p99 = hg["p99_ms"]
    print(f"budget p99 < {P99_BUDGET_MS:g} ms:    {budget(p99 < P99_BUDGET_MS)} ({p99:.1f} ms)")


def print_e2e(args: argparse.Namespace, report: dict[str, Any] | None, stats: Any) -> None:
    print(
        f"\nend-to-end, relay on: {args.e2e_events} events, target concurrency "
        f"{args.e2e_concurrency}, bundled generator (wrk cannot send exactly N)"
    )
    if report is None:
        print("  the load generator did not finish")
        return
    non_202 = report["requests"] - report["ok"]
    print(
        f"  ingest:    {report['ok']} x 202 in {report['seconds']:.2f} s = "
        f"{report['rps']:,.0f} events/s (non-202: {non_202}, errors: {report['errors'] or 0})"
    )
    if stats["last_at"] is None:
        print("  delivered: none")
        return
    span = stats["last_at"] - report["first_sent"]
    print(
        f"  delivered: {stats['unique']} in {span:.2f} s from the first POST = "
        f"{stats['unique'] / span:,.0f} events/s; the last one "
        f"{stats['last_at'] - report['last_done']:.2f} s after the last 202"
    )
    print(f"  duplicates at the sink (same X-Hookgate-Delivery-Id): {stats['duplicates']}")


def print_problems(problems: list[str]) -> None:
    if not problems:
        print("\nproblems: none")
        return
    print("\nproblems:")
    for problem in problems:
        print(f"  - {problem}")


# -- main -----------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path) -> None:
    load = Load(args.connections, args.body_size, args.duration, args.warmup)
    with bench_database(tmp) as db:
        bench = Bench(args, tmp, load, choose(args.generator), db)
        progress(f"generator {bench.generator}; database: {db.label}")
        bare = measure_bare(bench)
        hg = measure_hookgate(bench)
        e2e = measure_e2e(bench) if args.e2e_events > 0 else None
    print_header(bench)
    print_table(bare, hg)
    if e2e is not None:
        print_e2e(args, *e2e)
    print_problems(bench.problems)


def main() -> int:
    return bench_main(run, parse_args(), "hookgate-bench-")


if __name__ == "__main__":
    sys.exit(main())
