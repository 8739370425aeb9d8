"""Relay throughput: drain a backlog to local sinks, against a bare client loop, in one run.

What it measures (everything on 127.0.0.1, every server and client in its own process):

1. **bare client**: ``bench/client.py`` (aiohttp + uvloop) posts ``--backlog`` bodies
   of ``--body-size`` bytes to one ``bench/sink.py`` with ``--concurrency`` tasks: the
   ceiling of any Python relay against that sink on this machine.
2. **drain**: ``--backlog`` due deliveries (written with COPY) to one sink, and spread
   over 4 sinks (each its own process), drained by 1 and by 2 ``hookgate worker``
   processes at their default settings (log level included); each target has
   concurrency ``--concurrency``. The rate is deliveries / (last - first arrival at
   the sinks), so start-up is not counted.
3. **history**: the same drains again after ``--history`` delivered and dead
   deliveries and their events were added (server-side ``INSERT ... SELECT
   generate_series``, 256-byte bodies: seconds, not minutes) and analysed.
4. **end to end**: ``hookgate serve`` (relay on) while the bundled generator posts
   ``--e2e-events`` events to it; the rate the sink sees them at, from the first POST.

How to read it: the machine is small (2 cores) and shared, so absolute rates move
from run to run; the ratios to the bare client and between the runs of one
invocation are the figures the relay budgets are about: 1 worker >= 0.6x the
bare client, history within 20% of empty, 2 workers >= 1.3x one. PASS/MISS lines only
print. "problems" lists worker output at warning level and up, and stalls.

Run: ``.venv/bin/python bench/relay.py [--backlog 20000] [--history 1000000]
[--concurrency 64] [--body-size 1024] [--e2e-events 10000] [--sink protocol|aiohttp]``;
``--history 0 --backlog 2000 --e2e-events 0`` is a quick check. It cleans up after itself
(processes stopped, the database it created dropped), on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import yaml
from loadgen import make_body
from pgdb import Database, bench_database
from procs import Service, bench_main, free_port, get_json, running

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.ids import delivery_id, event_id  # noqa: E402
from gateway.storage.migrate import migrate  # noqa: E402

BENCH = Path(__file__).resolve().parent
STALL_SECONDS = 20.0
HISTORY_SQL = """
WITH e AS (
    INSERT INTO hookgate.events (id, source, event_type, received_at, method, path, query,
                                 headers, body)
    SELECT gen_random_uuid(), 'bench', 'bench.ping', now() - interval '30 days', 'POST',
           '/in/bench', '', '[["Content-Type", "application/json"]]'::jsonb,
           convert_to(repeat('x', 256), 'UTF8')
    FROM generate_series(1, $1)
    RETURNING id
)
INSERT INTO hookgate.deliveries (id, event_id, target, status, attempts, due_at, created_at,
                                 updated_at, last_outcome)
SELECT gen_random_uuid(), id, 'sink0', CASE WHEN random() < 0.95 THEN 'delivered' ELSE 'dead' END,
       1, now() - interval '30 days', now() - interval '30 days', now() - interval '30 days',
       'HTTP_2XX'
FROM e
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=20000, help="deliveries per drain")
    parser.add_argument("--history", type=int, default=1_000_000, help="0 skips the history runs")
    parser.add_argument("--concurrency", type=int, default=64, help="per target, and the client's")
    parser.add_argument("--body-size", type=int, default=1024)
    parser.add_argument("--e2e-events", type=int, default=10000, help="0 skips end-to-end")
    parser.add_argument("--workers", default="1,2", help="worker process counts to run")
    parser.add_argument("--sink", choices=["protocol", "aiohttp"], default="protocol",
                        help="bench/sink.py's own HTTP/1.1, or its aiohttp app")  # fmt: skip
    return parser.parse_args()


def progress(message: str) -> None:
    print(f".. {message}", file=sys.stderr, flush=True)


# -- the database ---------------------------------------------------------------------


def run_sql(url: str, statement: str, *args: Any) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement, *args)
        finally:
            await conn.close()

    asyncio.run(go())


def prepare(url: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(go())


def fill_backlog(url: str, count: int, targets: list[str], body: bytes) -> None:
    """`count` due deliveries (one event each), round robin over `targets`, with COPY."""
    now = dt.datetime.now(dt.UTC)
    headers = json.dumps([["Content-Type", "application/json"]])
    events, deliveries = [], []
    for n in range(count):
        new_id = event_id(now)
        target = targets[n % len(targets)]
        events.append((new_id, "bench", "bench.ping", now, "POST", "/in/bench", "", headers, body))
        deliveries.append((delivery_id(new_id, target), new_id, target, now, now, now))

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "events", schema_name="hookgate", records=events,
                    columns=["id", "source", "event_type", "received_at", "method", "path",
                             "query", "headers", "body"],
                )  # fmt: skip
                await conn.copy_records_to_table(
                    "deliveries", schema_name="hookgate", records=deliveries,
                    columns=["id", "event_id", "target", "due_at", "created_at", "updated_at"],
                )  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(go())


# -- processes ------------------------------------------------------------------------


def hookgate_command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("hookgate")
    start = [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]
    return [*start, *args]  # the default log level: what users run


def write_config(tmp: Path, db: Database, urls: list[str], concurrency: int, name: str) -> Path:
    database: dict[str, Any] = {"url": db.url}
    targets = {f"sink{n}": {"url": url, "concurrency": concurrency} for n, url in enumerate(urls)}
    config = {
        "database": database,
        "server": {"host": "127.0.0.1", "port": free_port()},
        "sources": {"bench": {"event_type": "json:type"}},
        "targets": targets,
        "routes": [{"source": "bench", "targets": ["sink0"]}],
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Sink(NamedTuple):
    base: str  # its base URL
    service: Service


@contextmanager
def sinks(tmp: Path, count: int, tag: str, kind: str = "protocol") -> Iterator[list[Sink]]:
    """`count` sink processes (`kind`: bench/sink.py's own HTTP/1.1, or its aiohttp app)."""
    with ExitStack() as stack:
        started = []
        for n in range(count):
            port = free_port()
            command = [sys.executable, str(BENCH / "sink.py"), "--port", str(port)]
            command += ["--aiohttp"] if kind == "aiohttp" else []
            sink = stack.enter_context(running(f"sink{n}", command, tmp / f"sink-{tag}-{n}.log"))
            sink.wait_ready(f"http://127.0.0.1:{port}/stats", 30)
            started.append(Sink(f"http://127.0.0.1:{port}", sink))
        yield started


def totals(bases: list[str]) -> tuple[int, int, float | None, float | None]:
    """Unique deliveries, duplicates, first and last arrival over every sink."""
    stats = [get_json(f"{base}/stats")[1] for base in bases]
    firsts = [s["first_at"] for s in stats if s["first_at"] is not None]
    lasts = [s["last_at"] for s in stats if s["last_at"] is not None]
    return (
        sum(s["unique"] for s in stats),
        sum(s["duplicates"] for s in stats),
        min(firsts, default=None),
        max(lasts, default=None),
    )


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of processes `pids` so far (Linux /proc); one that has
    ended counts what it had when last read, so nothing."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far, every process and the kernel
    (/proc/stat: all but idle and iowait)."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def postgres_pids(url: str) -> list[int]:
    """The server processes working for the database at `url`: its backends (the
    workers' connections, autovacuum) and the WAL writer, checkpointer and background
    writer that every database shares."""

    async def go() -> list[int]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE (datname = current_database()"
                " AND pid <> pg_backend_pid()) OR backend_type IN"
                " ('walwriter', 'checkpointer', 'background writer')"
            )
        finally:
            await conn.close()
        return [row["pid"] for row in rows]

    return asyncio.run(go())


def wait_for(
    bases: list[str], count: int, problems: list[str], label: str,
    pids: Mapping[str, Callable[[], Sequence[int]]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Until the sinks saw `count` unique deliveries (or nothing new for STALL_SECONDS).
    With `pids` (a name for each set of processes, and how to find them): each set's CPU
    per delivery from the first arrival on (start-up not counted)."""
    seen, moved = -1, time.monotonic()
    cpu_from: tuple[int, dict[str, tuple[Sequence[int], float]]] | None = None
    machine_from = machine_to = (0.0, 0.0)  # (busy seconds, when) inside the drain
    while time.monotonic() - moved < STALL_SECONDS:
        unique, duplicates, first, last = totals(bases)
        if pids and cpu_from is None and unique > 0:
            found = {name: find() for name, find in pids.items()}
            cpu_from = (unique, {name: (p, cpu_seconds(p)) for name, p in found.items()})
            machine_from = (machine_busy(), time.monotonic())
        if unique >= count:
            break
        if cpu_from is not None:
            machine_to = (machine_busy(), time.monotonic())
        if unique != seen:
            seen, moved = unique, time.monotonic()
        time.sleep(0.1)
    else:
        problems.append(f"{label}: stalled at {seen} of {count} deliveries")
    span = (last - first) if first is not None and last is not None else 0.0
    cpu: dict[str, float] = {}
    machine = None  # cores the machine kept busy, between polls that saw it still draining
    if cpu_from is not None and unique > cpu_from[0]:
        for name, (them, before) in cpu_from[1].items():
            cpu[name] = (cpu_seconds(them) - before) / (unique - cpu_from[0])
        if machine_to[1] > machine_from[1]:
            machine = (machine_to[0] - machine_from[0]) / (machine_to[1] - machine_from[1])
    return {"delivered": unique, "duplicates": duplicates, "seconds": span, "last_at": last,
            "rate": unique / span if span else 0.0, "cpu": cpu, "machine": machine}  # fmt: skip


def note_output(service: Service, problems: list[str]) -> None:
    lines = [line for line in service.tail(400).splitlines() if _loud(line)]
    if lines:
        problems.append(
            f"{service.name} logged at warning or above:\n    " + "\n    ".join(lines[-10:])
        )


def _loud(line: str) -> bool:
    try:
        level = json.loads(line).get("level")
    except ValueError:
        # Not a log line: a traceback or a crash, unless it is one of the start-up lines
        # `serve` and `worker` print on stdout (gateway/serving.py).
        return bool(line.strip()) and not line.startswith("hookgate: ")
    return level in ("warning", "error", "critical")


# -- the phases -----------------------------------------------------------------------


def measure_client(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with sinks(tmp, 1, "bare", args.sink) as ((base, _),):
        command = [sys.executable, str(BENCH / "client.py"), "--url", f"{base}/hooks",
                   "--count", str(args.backlog), "--concurrency", str(args.concurrency),
                   "--body-size", str(args.body_size)]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
        report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


def measure_drain(
    args: argparse.Namespace, tmp: Path, db: Database, sink_count: int, workers: int,
    problems: list[str],
) -> dict[str, Any]:  # fmt: skip
    label = f"{sink_count} sink(s), {workers} worker(s)"
    assert db.url is not None
    with sinks(tmp, sink_count, f"{sink_count}-{workers}", args.sink) as started_sinks:
        bases = [sink.base for sink in started_sinks]
        config = write_config(tmp, db, [f"{b}/hooks" for b in bases], args.concurrency, "drain")
        targets = [f"sink{n}" for n in range(sink_count)]
        fill_backlog(db.url, args.backlog, targets, make_body(args.body_size))
        progress(f"drain: {args.backlog} deliveries, {label}")
        with ExitStack() as stack:
            command = hookgate_command("worker", "--config", str(config))
            logs = [tmp / f"worker-{sink_count}-{workers}-{n}.log" for n in range(workers)]
            started = [stack.enter_context(running(f"worker{n}", command, log))
                       for n, log in enumerate(logs)]  # fmt: skip
            url = db.url
            pids = {
                "worker": lambda: [service.process.pid for service in started],
                "postgres": lambda: postgres_pids(url),
                "sink": lambda: [sink.service.process.pid for sink in started_sinks],
            }
            result = wait_for(bases, args.backlog, problems, label, pids)
            for service in started:
                service.stop()
                note_output(service, problems)
    return result


def measure_e2e(args: argparse.Namespace, tmp: Path, db: Database, problems: list[str]) -> Any:
    """Ingest and relay in one `hookgate serve`, the bundled generator posting to it."""
    from generators import Load, python_command

    with sinks(tmp, 1, "e2e", args.sink) as ((base, _),):
        config = write_config(tmp, db, [f"{base}/hooks"], args.concurrency, "e2e")
        port = yaml.safe_load(config.read_text())["server"]["port"]
        command = hookgate_command("serve", "--config", str(config))
        with running("hookgate serve", command, tmp / "serve.log") as serve:
            serve.wait_ready(f"http://127.0.0.1:{port}/readyz", 60)
            progress(f"end to end: {args.e2e_events} events")
            load = Load(64, args.body_size, 0.0, 0.0)
            url = f"http://127.0.0.1:{port}/in/bench"
            gen_command = python_command(url, load, args.e2e_events, 300)
            with running("loadgen", gen_command, tmp / "e2e-loadgen.log") as gen:
                result = wait_for([base], args.e2e_events, problems, "end to end")
                gen.process.wait(60)
                report = json.loads(gen.tail(1))
            serve.stop()
            note_output(serve, problems)
    first_post, last = report.get("first_sent"), result["last_at"]
    result["ingest_rps"] = report.get("rps")
    if first_post is not None and last is not None:
        result["rate"] = result["delivered"] / (last - first_post)
    return result


# -- the report -----------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(args: argparse.Namespace, db: Database, bare: dict[str, Any], runs: dict[Any, Any],
           e2e: dict[str, Any] | None, problems: list[str]) -> None:  # fmt: skip
    print(f"\nhookgate relay benchmark: {args.backlog} deliveries per drain, {args.body_size}-byte"
          f" bodies, concurrency {args.concurrency} per target, {args.sink} sink")  # fmt: skip
    print(f"database: {db.label}")
    print(f"machine:  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end\n")
    base = bare["rate"]
    print(f"bare aiohttp client loop, 1 sink: {base:,.0f} deliveries/s ({bare['seconds']:.2f} s)")
    print(f"\n{'history':>10}{'sinks':>7}{'workers':>9}{'per s':>9}{'x bare':>8}{'dups':>6}"
          f"{'cpu us/dlv: worker':>20}{'postgres':>10}{'sink':>6}{'cores busy':>12}"
          f"{'machine':>9}")  # fmt: skip
    for (history, sink_count, workers), r in runs.items():
        cpu = {name: f"{seconds * 1e6:,.0f}" for name, seconds in r["cpu"].items()}
        # What the three kept busy of the machine: the rate times their CPU per delivery.
        busy = f"{r['rate'] * sum(r['cpu'].values()):.2f}" if r["cpu"] else "-"
        # ... and what the whole machine was (autovacuum, the kernel, this script too).
        machine = f"{r['machine']:.2f}" if r.get("machine") else "-"
        print(f"{history:>10,}{sink_count:>7}{workers:>9}{r['rate']:>9,.0f}"
              f"{r['rate'] / base:>8.2f}{r['duplicates']:>6}{cpu.get('worker', '-'):>20}"
              f"{cpu.get('postgres', '-'):>10}{cpu.get('sink', '-'):>6}{busy:>12}"
              f"{machine:>9}")  # fmt: skip
    one = runs.get((0, 1, 1))
    if one:
        print(f"\nbudget 1 worker >= 0.6x bare:  {verdict(one['rate'] >= 0.6 * base)} "
              f"({one['rate'] / base:.2f})")  # fmt: skip
        two = runs.get((0, 1, 2))
        if two:
            ratio = two["rate"] / one["rate"]
            print(f"budget 2 workers >= 1.3x one:  {verdict(ratio >= 1.3)} ({ratio:.2f})")
            if one.get("machine"):
                # Two workers can at most use the whole machine, at no extra cost a delivery.
                cores = os.cpu_count() or 1
                print(f"  ceiling here: one worker kept {one['machine']:.2f} of {cores} cores "
                      f"busy, so two reach at most {cores / one['machine']:.2f}x")  # fmt: skip
        old = runs.get((args.history, 1, 1))
        if old and args.history:
            ratio = old["rate"] / one["rate"]
            print(f"budget history within 20%:     {verdict(ratio >= 0.8)} ({ratio:.2f})")
    if e2e is not None:
        print(f"\nend to end (ingest {e2e.get('ingest_rps') or 0:,.0f} events/s alongside): "
              f"{e2e['rate']:,.0f} deliveries/s; budget >= 1,500/s: "
              f"{verdict(e2e['rate'] >= 1500)}")  # fmt: skip
    print("\nproblems: none" if not problems else "\nproblems:")
    for problem in problems:
        print(f"  - {problem}")


def run(args: argparse.Namespace, tmp: Path) -> None:
    problems: list[str] = []
    with bench_database(tmp) as db:
        if db.url is None:
            raise SystemExit("bench/relay.py needs a PostgreSQL server (local or the env URL)")
        prepare(db.url)
        progress(f"database: {db.label}; bare client first")
        bare = measure_client(args, tmp)
        runs: dict[tuple[int, int, int], dict[str, Any]] = {}
        workers = [int(n) for n in args.workers.split(",")]
        for history in (0, args.history) if args.history else (0,):
            if history:
                progress(f"history: {history} delivered/dead deliveries and their events")
                run_sql(db.url, HISTORY_SQL, history)
                run_sql(db.url, "VACUUM ANALYZE")
            for sink_count in (1, 4):
                for count in workers:
                    runs[history, sink_count, count] = measure_drain(
                        args, tmp, db, sink_count, count, problems
                    )
        e2e = measure_e2e(args, tmp, db, problems) if args.e2e_events else None
    report(args, db, bare, runs, e2e, problems)


def main() -> int:
    return bench_main(run, parse_args(), "hookgate-relay-bench-")


if __name__ == "__main__":
    sys.exit(main())
