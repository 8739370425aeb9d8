"""The relay's baseline: a bare aiohttp + uvloop client loop posting to a sink.

It does what a relay's send does minus everything that makes it hookgate (the claim,
the record, the headers, the middleware): ``--concurrency`` tasks share one session and
POST ``--count`` bodies of ``--body-size`` bytes to ``--url`` back to back, then it
prints one JSON line ``{"count", "ok", "seconds", "rate"}``. Its rate is the ceiling any
Python relay can reach on this machine against the same sink.

Run: ``python bench/client.py --url http://127.0.0.1:18090/hooks --count 20000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

import aiohttp
from loadgen import make_body


async def post_all(url: str, count: int, concurrency: int, body: bytes) -> dict[str, float]:
    left = iter(range(count))
    ok = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def worker() -> None:
            nonlocal ok
            headers = {"Content-Type": "application/json"}
            for n in left:
                headers["X-Hookgate-Delivery-Id"] = f"bare-{n}"
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok += response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"count": count, "ok": ok, "seconds": seconds, "rate": count / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--body-size", type=int, default=1024)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    body = make_body(args.body_size)
    print(json.dumps(asyncio.run(post_all(args.url, args.count, args.concurrency, body))))


if __name__ == "__main__":
    main()
