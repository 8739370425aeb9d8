"""What `serve` and `worker` say at start: listeners, the database (never a password),
the admin URL when the app has one; where a PostgreSQL URL points, without its secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.config import parse_config
from gateway.serving import startup_lines
from gateway.storage.connect import describe


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://hooks:s3cret@db.internal:5433/hookgate", "db.internal:5433/hookgate"),
        ("postgres://hooks@db.internal/hookgate", "db.internal:5432/hookgate"),
        ("postgresql://u:p@[::1]:6543/d", "[::1]:6543/d"),
        ("postgresql://postgres:@/hookgate?host=/tmp/pg-sock", "socket /tmp/pg-sock/hookgate"),
        ("postgresql:///hookgate?host=db&port=6000", "db:6000/hookgate"),
    ],
)
def test_a_database_is_described_by_host_port_and_name_only(url, shown):
    assert describe(url) == shown
    assert "s3cret" not in describe(url)


def test_serve_announces_each_listener_and_an_external_database():
    config = parse_config("database: {url: 'postgresql://h:pw@db:5432/hooks'}", env={})
    lines = startup_lines(create_app(config), config, [("127.0.0.1", 8080), ("::1", 8080)])
    assert lines == [
        "listening on http://127.0.0.1:8080",
        "listening on http://[::1]:8080",
        "database: PostgreSQL at db:5432/hooks",
    ]


def test_the_embedded_database_is_announced_by_its_directory(tmp_path):
    config = parse_config(f"database: {{data_dir: '{tmp_path}'}}", env={})
    lines = startup_lines(create_app(config), config, [("0.0.0.0", 80)])
    assert lines == [
        "listening on http://0.0.0.0:80 (every interface)",
        f"database: embedded PostgreSQL under {Path(tmp_path, 'pg').resolve()}",
    ]


ADMIN = "admin: {tokens: {ops: t0ken}}"


def test_the_inspectors_url_is_announced_when_the_app_serves_it():
    config = parse_config(f"database: {{url: 'postgresql://db/hooks'}}\n{ADMIN}", env={})
    lines = startup_lines(create_app(config), config, [("127.0.0.1", 8080)])
    assert lines[-1] == "admin: http://127.0.0.1:8080/admin"
    every = startup_lines(create_app(config), config, [("0.0.0.0", 8080)])
    assert every[-1] == "admin: http://0.0.0.0:8080/admin"


def test_the_inspector_on_its_own_listener_is_announced_there():
    text = f"database: {{url: 'postgresql://db/hooks'}}\n{ADMIN[:-1]}, port: 9090}}"
    config = parse_config(text, env={})
    lines = startup_lines(create_app(config), config, [("0.0.0.0", 8080)])
    assert lines[-1] == "admin: http://127.0.0.1:9090/admin"


def test_without_an_admin_token_no_admin_url_is_announced():
    config = parse_config("database: {url: 'postgresql://db/hooks'}", env={})
    lines = startup_lines(create_app(config), config, [("127.0.0.1", 8080)])
    assert not [line for line in lines if line.startswith("admin:")]


def test_a_worker_announces_its_database_and_that_it_relays():
    config = parse_config("database: {url: 'postgresql://db/hooks'}", env={})
    lines = startup_lines(create_app(config, ingress=False), config, [])
    assert lines == [
        "database: PostgreSQL at db:5432/hooks",
        "relaying to 0 targets (no listener: a worker)",
    ]
