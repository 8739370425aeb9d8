"""Run a load generator in its own process and return its report as a dict.

Two generators give the same report shape (see ``loadgen.summary``):

* ``wrk`` (if on PATH): one thread, a Lua script for the POST body, a ``response``
  hook that tallies status codes, and a ``done`` hook that prints one JSON line.
* ``python``: ``bench/loadgen.py`` (raw HTTP/1.1 on uvloop) in a subprocess.

Both are closed-loop with a fixed number of keep-alive connections, so one generator
driving both servers makes their ratio fair. Only the bundled one can send an exact
number of requests, so the end-to-end run always uses it.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen import make_body

LOADGEN = Path(__file__).with_name("loadgen.py")
MARKER = "BENCH_JSON "

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%(body)s]==]
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do
      table.insert(parts, string.format('"%%d": %%d', code, n))
    end
  end
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"statuses": {%%s}, "seconds": %%f, "p50_us": %%f, "p99_us": %%f, '
    .. '"errors": {"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}}\\n',
    table.concat(parts, ", "), summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    """What to send: the same for every server in a run."""

    connections: int
    body_size: int
    duration: float
    warmup: float


def choose(kind: str) -> str:
    """`wrk` or `python`: `auto` picks wrk when it is installed."""
    if kind == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if kind == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--generator wrk: wrk is not on PATH")
    return kind


def describe(kind: str) -> str:
    if kind == "wrk":
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        version = (out.stdout or out.stderr).split(" Copyright")[0].strip()
        return f"{version} (1 thread, Lua POST script), own process"
    return "bundled bench/loadgen.py (raw HTTP/1.1 on uvloop), own process"


def run_load(kind: str, url: str, load: Load, tmp: Path) -> dict[str, object]:
    """Warm up, then load `url` for `load.duration` seconds; the report of the last part."""
    if kind == "wrk":
        return run_wrk(url, load, tmp)
    args = ["--duration", str(load.duration), "--warmup", str(load.warmup)]
    return run_python(url, load, args, timeout=load.warmup + load.duration + 30)


def run_python(url: str, load: Load, extra: list[str], timeout: float) -> dict[str, object]:
    command = [sys.executable, str(LOADGEN), url, *extra]
    command += ["--connections", str(load.connections), "--body-size", str(load.body_size)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    report: dict[str, object] = json.loads(out.stdout)
    return report


def python_command(url: str, load: Load, requests: int, timeout: float) -> list[str]:
    """The bundled generator sending exactly `requests` POSTs (for a caller-managed Popen)."""
    return [
        *(sys.executable, str(LOADGEN), url),
        *("--requests", str(requests), "--timeout", str(timeout)),
        *("--connections", str(load.connections), "--body-size", str(load.body_size)),
    ]


def run_wrk(url: str, load: Load, tmp: Path) -> dict[str, object]:
    script = tmp / "post.lua"
    body = make_body(load.body_size).decode()
    script.write_text(WRK_SCRIPT % {"body": body, "marker": MARKER})
    if load.warmup > 0:
        _wrk(url, load.connections, load.warmup, script)
    return _wrk(url, load.connections, load.duration, script)


def _wrk(url: str, connections: int, seconds: float, script: Path) -> dict[str, object]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    command += ["--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith(MARKER))
    return wrk_report(json.loads(line.removeprefix(MARKER)))


def wrk_report(raw: dict[str, Any]) -> dict[str, object]:
    """wrk's figures in the bundled generator's report shape."""
    statuses = {str(code): int(n) for code, n in raw["statuses"].items()}
    seconds = float(raw["seconds"])
    ok = statuses.get("202", 0)
    return {
        "generator": "wrk",
        "requests": sum(statuses.values()),
        "ok": ok,
        "statuses": statuses,
        "errors": {kind: int(n) for kind, n in raw["errors"].items() if n},
        "seconds": seconds,
        "rps": ok / seconds if seconds > 0 else 0.0,
        # wrk's percentiles cover every answer, not only the 202s.
        "p50_ms": float(raw["p50_us"]) / 1000 if statuses else math.nan,
        "p99_ms": float(raw["p99_us"]) / 1000 if statuses else math.nan,
    }
