"""A target for the end-to-end run: counts the deliveries hookgate POSTs to it.

``POST /hooks`` reads the body, remembers the ``X-Hookgate-Delivery-Id`` and answers
200. ``GET /stats`` answers ``{"received", "unique", "duplicates", "first_at",
"last_at"}``: every POST, distinct delivery ids, their difference (at-least-once
may repeat a delivery), and the wall-clock times of the first and of the latest
new delivery, so the end-to-end time does not depend on how often it is polled.

Run: ``python bench/sink.py --port 18090``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Tally:
    received: int = 0
    ids: set[str] = field(default_factory=set)
    first_at: float | None = None
    last_at: float | None = None

    def add(self, delivery_id: str) -> None:
        self.received += 1
        if delivery_id in self.ids:
            return
        self.ids.add(delivery_id)
        self.last_at = time.time()
        if self.first_at is None:
            self.first_at = self.last_at


TALLY = web.AppKey("tally", Tally)


async def hooks(request: web.Request) -> web.Response:
    await request.read()
    request.app[TALLY].add(request.headers.get("X-Hookgate-Delivery-Id", "missing"))
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    tally = request.app[TALLY]
    unique = len(tally.ids)
    return web.json_response(
        {
            "received": tally.received,
            "unique": unique,
            "duplicates": tally.received - unique,
            "first_at": tally.first_at,
            "last_at": tally.last_at,
        }
    )


def create_app() -> web.Application:
    app = web.Application(client_max_size=1024**2)
    app[TALLY] = Tally()
    app.router.add_post("/hooks", hooks)
    app.router.add_get("/stats", stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18090)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
