"""Websockets through the pass-through: one connection to the upstream per client.

The upstream is connected first, so a refused or timed-out upstream is the usual JSON
502/504 and a refused upgrade keeps the upstream's status. Then the client's upgrade is
accepted with the subprotocol the upstream chose, and messages are copied both ways
(text stays text, binary stays binary; pings are answered on each leg). When either side
closes, the other is closed with the same code.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from gateway.ingress.forwarded import connection_tokens
from gateway.logging import crash_site
from gateway.middleware import identify, log_fields

# Codes a peer may not send in a close frame (RFC 6455 §7.4.1); said instead as 1011.
_NOT_SENDABLE = frozenset({1005, 1006, 1015})
Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


def is_upgrade(request: web.BaseRequest) -> bool:
    return (
        request.method == "GET"
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in connection_tokens(request.headers)
    )


async def proxy(
    request: web.Request,
    session: aiohttp.ClientSession,
    url: URL,
    headers: CIMultiDict[str],
    connect_within: float,
) -> web.StreamResponse:
    """Connect to the upstream, accept the client, and copy messages until one closes."""
    fields = log_fields(request)
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    protocols = [p.strip() for p in offered.split(",") if p.strip()]
    try:
        async with asyncio.timeout(connect_within):
            upstream = await session.ws_connect(
                url, headers=headers, protocols=protocols, autoclose=False
            )
    except aiohttp.WSServerHandshakeError as exc:
        fields.update(upstream_error="refused_upgrade", upstream_status=exc.status)
        status = exc.status if 400 <= exc.status <= 599 else 502
        return web.json_response({"error": "the upstream refused the websocket"}, status=status)
    except TimeoutError:
        fields["upstream_error"] = "timeout"
        return web.json_response(
            {"error": f"the upstream did not answer within {connect_within:g}s"}, status=504
        )
    except OSError as exc:  # aiohttp's connection errors too: the OS's text, the upstream's host
        fields.update(upstream_error="refused", upstream_detail=f"{type(exc).__name__}: {exc}")
        return web.json_response({"error": "the upstream is unreachable"}, status=502)
    except aiohttp.ClientError as exc:  # its message may quote the URL: the client's path and query
        site = crash_site(exc)
        fields.update(
            upstream_error="refused", upstream_detail=site["error"], upstream_frames=site["frames"]
        )
        return web.json_response({"error": "the upstream is unreachable"}, status=502)
    async with upstream:
        chosen = [upstream.protocol] if upstream.protocol else []
        client = web.WebSocketResponse(protocols=chosen, autoclose=False)
        await identify(client).prepare(request)
        await _copy_both_ways(client, upstream)
        fields.update(close_code=client.close_code, upstream_close_code=upstream.close_code)
    return client


async def _copy_both_ways(client: web.WebSocketResponse, upstream: Socket) -> None:
    """Copy until one side sends a close frame (or goes away); pass its code to the other
    side, and the other side's answering code back (neither side closes on its own)."""
    pumps = {
        asyncio.create_task(_copy(client, upstream), name="ws-to-upstream"): (client, upstream),
        asyncio.create_task(_copy(upstream, client), name="ws-to-client"): (upstream, client),
    }
    try:
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    closer, other = pumps[next(iter(done))]
    with contextlib.suppress(ConnectionError, RuntimeError):
        await other.close(code=_sendable(closer.close_code))
    with contextlib.suppress(ConnectionError, RuntimeError):
        await closer.close(code=_sendable(other.close_code or closer.close_code))


async def _copy(source: Socket, sink: Socket) -> None:
    """Messages from `source` to `sink` until `source` closes."""
    async for message in source:
        if message.type == WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await sink.send_bytes(message.data)


def _sendable(code: int | None) -> int:
    if code is None:
        return 1000
    return 1011 if code in _NOT_SENDABLE else code
