"""hookgate behind Debian's nginx, configured as docs/behind-a-proxy.md says.

nginx terminates TLS on a loopback port and forwards ``/in/`` to hookgate, which trusts
it (``server.trusted_proxies``). Clients connect from other loopback addresses
(127.0.0.5, 127.0.0.6), so the IP allowlist can only pass if hookgate sees the client's
address through nginx, and Twilio, Square and HubSpot signatures (made over the public
``https://`` URL) only verify if hookgate rebuilds that URL from nginx's headers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from conftest import GatewayTestServer, make_config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.app import create_app
from gateway.send import SendRequest, signed_request

HOST = "hooks.example.test"
SECRET = "nginx-test-secret"
NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream hookgate {{ server 127.0.0.1:{hookgate}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {host};
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        client_max_body_size 1m;
        location /in/ {{
            proxy_pass http://hookgate;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_request_buffering off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed, and CI must run this test (.ci/run installs it)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(tmp: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def start_nginx(binary: str, tmp: Path, hookgate: int) -> tuple[subprocess.Popen[bytes], int]:
    """nginx in the foreground with the test's own config and certificate; its port."""
    port = free_port()
    self_signed(tmp)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, hookgate=hookgate, host=HOST))
    log = tmp / "error.log"
    process = subprocess.Popen(
        [binary, "-p", str(tmp), "-e", str(log), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return process, port


def check_running(process: subprocess.Popen[bytes], log: Path) -> None:
    assert process.poll() is None, log.read_text()


async def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    async with asyncio.timeout(10):
        while True:
            check_running(process, log)
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return


SOURCES = f"""
server: {{trusted_proxies: [127.0.0.1/32]}}
sources:
  office: {{ip_allowlist: [127.0.0.5/32]}}
  twilio: {{verify: {{type: twilio, secret: {SECRET}}}}}
  square: {{verify: {{type: square, secret: {SECRET}}}}}
  hubspot: {{verify: {{type: hubspot, secret: {SECRET}}}}}
"""


@pytest.fixture
async def nginx(tmp_path, database_url, aiohttp_client) -> AsyncIterator[int]:
    """hookgate on a loopback port and nginx in front of it: nginx's port."""
    binary = nginx_binary()
    hookgate = await aiohttp_client(
        GatewayTestServer(create_app(make_config(database_url, SOURCES)))
    )
    process, port = start_nginx(binary, tmp_path, hookgate.port)
    try:
        await wait_listening(port, process, tmp_path / "error.log")
        yield port
    finally:
        process.terminate()
        process.wait(10)


def client_from(address: str) -> aiohttp.ClientSession:
    """A client whose connections come from `address` (any 127.x address is loopback)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nginx's certificate is the test's own, self-signed
    connector = aiohttp.TCPConnector(local_addr=(address, 0), ssl=context)
    return aiohttp.ClientSession(connector=connector)


async def post(port: int, path: str, source: str, body: bytes, headers: dict[str, str]) -> int:
    async with (
        client_from(source) as session,
        session.post(f"https://127.0.0.1:{port}{path}", data=body,
                     headers={"Host": f"{HOST}:{port}", **headers}) as response,
    ):  # fmt: skip
        return response.status


async def test_the_ip_allowlist_sees_the_clients_address_through_nginx(nginx, database_url):
    assert await post(nginx, "/in/office", "127.0.0.5", b"{}", {}) == 202
    assert await post(nginx, "/in/office", "127.0.0.6", b"{}", {}) == 403
    # A client's own X-Forwarded-For does not get it past: nginx appends what it saw.
    forged = {"X-Forwarded-For": "127.0.0.5"}
    assert await post(nginx, "/in/office", "127.0.0.6", b"{}", forged) == 403
    conn = await asyncpg.connect(database_url)
    try:
        peers = [row["peer"] for row in await conn.fetch("SELECT peer FROM hookgate.events")]
    finally:
        await conn.close()
    assert peers == ["127.0.0.5"]


@pytest.mark.parametrize("provider", ["twilio", "square", "hubspot"])
async def test_public_url_verifiers_see_the_public_https_url_through_nginx(nginx, provider):
    public = f"https://{HOST}:{nginx}/in/{provider}?account=AC1"
    body, headers = signed_request(SendRequest(provider, public, {"secret": SECRET}))
    assert await post(nginx, f"/in/{provider}?account=AC1", "127.0.0.5", body, headers) == 202


async def test_without_nginxs_headers_the_same_signature_fails(nginx, database_url, aiohttp_client):
    direct = await aiohttp_client(GatewayTestServer(create_app(make_config(database_url, SOURCES))))
    public = f"https://{HOST}:{nginx}/in/twilio"
    body, headers = signed_request(SendRequest("twilio", public, {"secret": SECRET}))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{direct.port}/in/twilio", data=body, headers=headers
        ) as response,
    ):
        assert response.status == 401
    assert await post(nginx, "/in/twilio", "127.0.0.5", body, headers) == 202
