"""The long-lived things hookgate lends a plugin at run time.

One client session, one delivery client and one clock for the whole process: the http
targets send through `Resources.client` (keep-alive pools, see
gateway/contract/httpclient.py), and verifiers that need a key from the network (SNS
certificates) GET it with `Resources.fetch`, so no verifier has to know aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from gateway.clock import Clock
from gateway.contract.httpclient import HttpClient
from gateway.errors import FetchError

_CHUNK = 16384


@dataclass(frozen=True, slots=True)
class Resources:
    """Long-lived things a plugin may use at run time (shared: never close them)."""

    http: aiohttp.ClientSession
    clock: Clock
    # The delivery client the process shares; None: each http target opens its own
    # (and closes it with the target).
    client: HttpClient | None = None

    async def fetch(self, url: str, *, seconds: float = 5.0, max_bytes: int = 65536) -> bytes:
        """The body of a GET of `url`, which must answer 200 within `seconds` with
        at most `max_bytes`. Redirects are not followed (they could leave a host the
        caller checked) and the body is asked for without compression. Anything else
        raises `FetchError`."""
        try:
            async with self.http.get(
                url,
                headers={"Accept-Encoding": "identity"},
                timeout=aiohttp.ClientTimeout(total=seconds),
                allow_redirects=False,
            ) as response:
                if response.status != 200:
                    raise FetchError(f"{url} answered {response.status}")
                return await _capped(response, url, max_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc


async def _capped(response: aiohttp.ClientResponse, url: str, max_bytes: int) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(f"{url} answered more than {max_bytes} bytes")
    return bytes(body)
