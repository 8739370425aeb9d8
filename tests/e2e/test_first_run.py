"""What a person starting `hookgate serve` sees, with real processes: where it listens,
which database it uses, and one clear line (exit 1) when the port is taken or the
database cannot be reached or refuses us."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import aiohttp
import pytest
from test_lifecycle import free_port, hookgate, stop, wait_ready, write_config

from gateway.storage.connect import describe


async def read_until(stream: asyncio.StreamReader, prefix: str) -> list[str]:
    """Lines of `stream` up to and including the first that starts with `prefix`."""
    lines: list[str] = []
    async with asyncio.timeout(30):
        while not lines or not lines[-1].startswith(prefix):
            line = await stream.readline()
            assert line, f"the stream ended before {prefix!r}: {lines}"
            lines.append(line.decode().rstrip("\n"))
    return lines


async def finish(process: asyncio.subprocess.Process) -> tuple[int, list[str]]:
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    return process.returncode or 0, stderr.decode().splitlines()


async def test_serve_says_where_it_listens_and_which_database_it_uses(
    tmp_path, database_url, target
):
    sink, port = await target(), free_port()
    config = write_config(tmp_path / "h.yaml", database_url, sink.url, port, relay=True)
    with config.open("a") as file:  # an admin token: the inspector is served, and announced
        file.write("admin: {tokens: {ops: tok_0123456789abcdef0123}}\n")
    async with hookgate("serve", "--config", str(config)) as process:
        assert process.stdout is not None
        lines = await read_until(process.stdout, "hookgate: admin:")
        await wait_ready(port)
        assert lines == [
            f"hookgate: listening on http://127.0.0.1:{port}",
            f"hookgate: database: PostgreSQL at {describe(database_url)}",
            f"hookgate: admin: http://127.0.0.1:{port}/admin",
        ]
        url = lines[-1].removeprefix("hookgate: admin: ")  # the inspector's, signed in to
        jar = aiohttp.CookieJar(unsafe=True)  # the session cookie of an IP address
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            async with session.get(url, allow_redirects=False) as page:
                assert page.status == 303
                assert page.headers["Location"] == "/admin/login?next=%2Fadmin"
            signed_in = await session.post(
                f"{url}/login", data={"token": "tok_0123456789abcdef0123", "next": "/admin"}
            )
            assert signed_in.status == 200 and "Dashboard" in await signed_in.text()
        code, _ = await stop(process)
    assert code == 0


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else listens on meanwhile."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


async def test_a_port_in_use_is_one_line_and_exit_1(tmp_path, database_url, target):
    sink = await target()
    with taken_port() as port:
        config = write_config(tmp_path / "h.yaml", database_url, sink.url, port, relay=True)
        async with hookgate("serve", "--config", str(config)) as process:
            code, err = await finish(process)
    assert code == 1
    assert err == [
        f"hookgate: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(another hookgate? choose another port with server.port or --port)"
    ]


async def test_an_admin_port_in_use_is_one_line_and_exit_1(tmp_path, database_url, target):
    sink = await target()
    with taken_port() as port:
        config = write_config(tmp_path / "h.yaml", database_url, sink.url, free_port(), True)
        with config.open("a") as file:
            file.write(f"admin: {{tokens: {{ops: tok_0123456789abcdef0123}}, port: {port}}}\n")
        async with hookgate("serve", "--config", str(config)) as process:
            code, err = await finish(process)
    assert code == 1
    assert err[-1] == (
        f"hookgate: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(another hookgate? choose another port with admin.port)"
    )
    assert not [line for line in err if "Traceback" in line]


@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
async def test_an_unreachable_database_is_retried_with_a_countdown_then_exit_1(tmp_path, command):
    port = free_port()  # nothing listens there
    url = f"postgresql://hookgate:s3cret@127.0.0.1:{port}/hooks"
    config = write_config(tmp_path / "h.yaml", url, "http://127.0.0.1:9/", free_port(), True)
    text = config.read_text().replace("database: {", "database: {connect_timeout: 3s, ")
    config.write_text(text)
    async with hookgate(command, "--config", str(config)) as process:
        code, err = await finish(process)
    assert code == 1
    waits = [line for line in err if '"database_connect_failed"' in line]
    assert waits and all(f'"database":"127.0.0.1:{port}/hooks"' in line for line in waits)
    assert '"gives_up_in":' in waits[0]
    assert err[-1] == (
        f"hookgate: cannot reach PostgreSQL at 127.0.0.1:{port}/hooks after 3 s: "
        "connection refused (database.connect_timeout sets how long to try)"
    )
    assert not any("s3cret" in line for line in err)


async def test_a_refused_login_says_what_the_server_said(tmp_path, database_url):
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    url = parts._replace(netloc=f"nobody_hookgate@{host}").geturl()
    config = write_config(tmp_path / "h.yaml", url, "http://127.0.0.1:9/", free_port(), True)
    async with hookgate("serve", "--config", str(config)) as process:
        code, err = await finish(process)
    assert code == 1
    assert err[-1].startswith(f"hookgate: PostgreSQL at {describe(url)} refused the connection: ")
    assert 'role "nobody_hookgate" does not exist' in err[-1]
