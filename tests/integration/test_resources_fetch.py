"""Resources.fetch, the GET a verifier makes without knowing aiohttp, against a real server."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from gateway.clock import FrozenClock
from gateway.plugin import FetchError, Resources
from plugins.verifiers import sns

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
async def server(aiohttp_server):
    """A certificate host: /cert.pem, a redirect, an error, a large and a silent answer."""
    seen: list[dict[str, str]] = []
    release = asyncio.Event()

    async def cert(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=PEM, content_type="application/x-pem-file")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/cert.pem")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no")

    async def large(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(8):
            await response.write(b"x" * 1024)
        return response

    async def silent(request: web.Request) -> web.Response:
        await release.wait()  # never answers before the client gives up
        return web.Response()

    app = web.Application()
    for path, handler in [("/cert.pem", cert), ("/moved", moved), ("/missing", missing),
                          ("/large", large), ("/silent", silent)]:  # fmt: skip
        app.router.add_get(path, handler)
    running = await aiohttp_server(app)
    yield running, seen
    release.set()


@pytest.fixture
async def resources():
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield Resources(session, FrozenClock())


async def test_fetch_returns_the_body_of_a_200_asked_for_uncompressed(server, resources):
    running, seen = server
    assert await resources.fetch(str(running.make_url("/cert.pem"))) == PEM
    assert seen[0]["Accept-Encoding"] == "identity"


async def test_fetch_does_not_follow_a_redirect(server, resources):
    running, seen = server
    with pytest.raises(FetchError, match="answered 302"):
        await resources.fetch(str(running.make_url("/moved")))
    assert seen == []  # the redirect's target was never asked


async def test_fetch_refuses_an_answer_other_than_200(server, resources):
    with pytest.raises(FetchError, match="answered 404"):
        await resources.fetch(str(server[0].make_url("/missing")))


async def test_fetch_stops_reading_past_max_bytes(server, resources):
    url = str(server[0].make_url("/large"))
    assert len(await resources.fetch(url, max_bytes=8192)) == 8192
    with pytest.raises(FetchError, match="more than 4096 bytes"):
        await resources.fetch(url, max_bytes=4096)


async def test_fetch_gives_up_after_its_timeout(server, resources):
    with pytest.raises(FetchError, match="TimeoutError"):
        await resources.fetch(str(server[0].make_url("/silent")), seconds=0.05)


async def test_fetch_of_a_closed_port_is_a_fetch_error(resources):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(FetchError, match="ClientConnectorError"):
        await resources.fetch(f"http://127.0.0.1:{port}/cert.pem")


async def test_the_sns_verifier_fetches_through_resources(server, resources):
    get = sns.http_get(resources)
    assert await get(str(server[0].make_url("/cert.pem"))) == PEM
    with pytest.raises(FetchError):
        await get(str(server[0].make_url("/moved")))
