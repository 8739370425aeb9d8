"""The reverse-proxy front: pass-through against the upstream reached directly, one run.

What it measures (everything on 127.0.0.1, every server in its own process):

1. **direct**: ``bench/bare.py`` (aiohttp + uvloop) as the upstream app, loaded at an
   app path (``POST /app/orders``, answered ``202``) with no hookgate in between.
2. **bare proxy**: ``bench/bare_proxy.py`` in front of that same upstream: an aiohttp
   server whose handler forwards with an aiohttp client and returns the answer, nothing
   else. The floor of a proxy built on aiohttp's client and server here.
3. **pass-through**: the same load to ``hookgate serve`` with ``upstream:`` pointing at
   that same bare process. Budget: >= 0.5x direct.
4. **webhook at its own path vs /in/<source>**: in that same hookgate (relay off), the
   source ``bench`` is also captured at ``/webhooks/bench``; both paths are loaded the
   same way and should cost the same (each 202 is a durable commit).

Same load for every phase: ``--connections`` keep-alive clients posting
``--body-size``-byte JSON back to back for ``--duration`` seconds after a warm-up (wrk
when installed, else the bundled generator). Only the ratios from one run mean much on
a shared machine. hookgate runs at ``--log-level`` (default info: one line per request,
as users run it).

Run: ``.venv/bin/python bench/proxy.py [--duration 10] [--connections 64]
[--body-size 1024] [--log-level info] [--generator auto|wrk|python]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from generators import Load, choose, describe, run_load
from pgdb import Database, bench_database
from procs import Service, bench_main, free_port, running

BENCH = Path(__file__).resolve().parent
RATIO_BUDGET = 0.5
READY_TIMEOUT = 90.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--body-size", type=int, default=1024, help="bytes of JSON per POST")
    parser.add_argument("--log-level", default="info", help="hookgate's log level")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    return parser.parse_args()


def progress(message: str) -> None:
    print(f".. {message}", file=sys.stderr, flush=True)


def front_config(db: Database, port: int, upstream: str) -> dict[str, Any]:
    database: dict[str, Any] = {"data_dir": str(db.data_dir)}
    if db.url:
        database["url"] = db.url
    return {
        "database": database,
        "server": {"host": "127.0.0.1", "port": port},
        "relay": {"enabled": False},  # deliveries to the parked target just stay pending
        "upstream": {"url": upstream},
        "sources": {"bench": {"event_type": "json:type", "path": "/webhooks/bench"}},
        "targets": {"parked": {"url": "http://127.0.0.1:9/"}},
        "routes": [{"source": "bench", "targets": ["parked"]}],
    }


def cpu_seconds(service: Service) -> float:
    """User + system CPU the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{service.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def upstream_app(tmp: Path) -> Iterator[tuple[str, Service]]:
    port = free_port()
    command = [sys.executable, str(BENCH / "bare.py"), "--port", str(port)]
    with running("upstream (bare)", command, tmp / "upstream.log") as app:
        app.wait_ready(f"http://127.0.0.1:{port}/healthz", 30)
        yield f"http://127.0.0.1:{port}", app


@contextmanager
def bare_proxy(tmp: Path, upstream: str) -> Iterator[tuple[str, Service]]:
    port = free_port()
    command = [sys.executable, str(BENCH / "bare_proxy.py"), "--upstream", upstream]
    with running("bare proxy", [*command, "--port", str(port)], tmp / "bare-proxy.log") as proxy:
        proxy.wait_ready(f"http://127.0.0.1:{port}/healthz", 30)
        yield f"http://127.0.0.1:{port}", proxy


@contextmanager
def hookgate(tmp: Path, db: Database, upstream: str, level: str) -> Iterator[tuple[str, Service]]:
    port = free_port()
    config = tmp / "front.yaml"
    config.write_text(yaml.safe_dump(front_config(db, port, upstream), sort_keys=False))
    script = Path(sys.executable).with_name("hookgate")
    start = [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]
    command = [*start, "--log-level", level, "serve", "--config", str(config)]
    with running("hookgate", command, tmp / "hookgate.log") as hg:
        hg.wait_ready(f"http://127.0.0.1:{port}/readyz", READY_TIMEOUT)
        yield f"http://127.0.0.1:{port}", hg
        if not hg.alive():
            raise SystemExit(f"hookgate died during the load:\n{hg.tail()}")


def measure(
    name: str, url: str, load: Load, generator: str, tmp: Path, server: Service
) -> dict[str, Any]:
    """The load's report, plus the CPU the server it hits used per answered request."""
    progress(f"{name}: {load.warmup:g} s warm-up + {load.duration:g} s -> {url}")
    if load.warmup > 0:
        run_load(generator, url, replace(load, duration=load.warmup, warmup=0), tmp)
    before = cpu_seconds(server)
    report: dict[str, Any] = dict(run_load(generator, url, replace(load, warmup=0), tmp))
    report["cpu_us"] = (cpu_seconds(server) - before) * 1e6 / (report["requests"] or 1)
    report["name"] = name
    return report


def run(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    load = Load(args.connections, args.body_size, args.duration, args.warmup)
    generator = choose(args.generator)
    with bench_database(tmp) as db, upstream_app(tmp) as (app, bare):
        progress(f"generator {generator}; database {db.label}")
        reports = [measure("direct", f"{app}/app/orders", load, generator, tmp, bare)]
        with bare_proxy(tmp, app) as (proxy, floor):
            url = f"{proxy}/app/orders"
            reports.append(measure("bare proxy", url, load, generator, tmp, floor))
        with hookgate(tmp, db, app, args.log_level) as (hg, server):
            for name, path in (("pass-through", "/app/orders"), ("/in/bench", "/in/bench"),
                               ("/webhooks/bench", "/webhooks/bench")):  # fmt: skip
                reports.append(measure(name, f"{hg}{path}", load, generator, tmp, server))
    print_report(args, generator, db, reports)
    return reports


def print_report(
    args: argparse.Namespace, generator: str, db: Database, reports: list[dict[str, Any]]
) -> None:
    print(
        f"\nhookgate reverse-proxy benchmark: {args.connections} connections, "
        f"{args.body_size}-byte JSON POSTs, {args.duration:g} s after {args.warmup:g} s warm-up"
    )
    print(f"load generator: {describe(generator)}; hookgate log level {args.log_level}")
    print(f"database:       {db.label}")
    print(f"machine:        {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n")
    header = f"{'':18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-202':>9}{'errors':>8}"
    print(f"{header}{'CPU us/req':>12}")
    for r in reports:
        errors = sum(r["errors"].values())
        print(
            f"{r['name']:18}{r['rps']:>10,.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{r['requests'] - r['ok']:>9}{errors:>8}{r['cpu_us']:>12,.0f}"
        )
    print("(CPU: of the server the load hits: the upstream, the bare proxy, or hookgate)")
    by = {r["name"]: r for r in reports}
    through = ratio(by["pass-through"], by["direct"])
    verdict = "PASS" if through >= RATIO_BUDGET else "MISS"
    print(
        f"\npass-through / direct req/s:     {through:.3f}  (budget >= {RATIO_BUDGET}: {verdict})"
    )
    floor = ratio(by["bare proxy"], by["direct"])
    print(f"bare aiohttp proxy / direct:     {floor:.3f}  (what aiohttp's client and server cost)")
    print(f"pass-through / bare proxy:       {ratio(by['pass-through'], by['bare proxy']):.3f}")
    own = ratio(by["/webhooks/bench"], by["/in/bench"])
    print(f"webhook at its own path / /in/:  {own:.3f}  (the same route: ~1.0 expected)")


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    return float(a["rps"] / b["rps"]) if b["rps"] else math.nan


def main() -> int:
    return bench_main(run, parse_args(), "hookgate-bench-proxy-")


if __name__ == "__main__":
    sys.exit(main())
