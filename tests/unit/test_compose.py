"""docker-compose.yml: the scale-out layout is well formed and its hookgate config valid.

Compose cannot run here (no image registry); `docker compose config` validates it
where the plugin is installed, and this test parses it everywhere."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.config import parse_config

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
MOUNTED = "/etc/hookgate/hookgate.yaml"


def hookgate_config(service: str):
    spec = SERVICES[service]
    (mount,) = [v for v in spec["volumes"] if v.endswith(f"{MOUNTED}:ro")]
    path = ROOT / mount.split(":")[0]
    return parse_config(path.read_text(), env=spec["environment"]), spec


def test_gateways_and_workers_are_replicated_on_one_postgres_16():
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["gateway"]["deploy"]["replicas"] >= 2
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2
    urls = {hookgate_config(s)[0].database.url for s in ("gateway", "worker", "migrate")}
    assert urls == {"postgresql://hookgate:hookgate@postgres:5432/hookgate"}


def test_gateways_take_ingress_only_and_workers_relay():
    gateway, spec = hookgate_config("gateway")
    worker, worker_spec = hookgate_config("worker")
    assert (gateway.relay.enabled, worker.relay.enabled) == (False, True)
    assert spec["command"][0] == "serve" and worker_spec["command"][0] == "worker"
    assert "http://sink:9000/hooks" in repr(gateway.targets["sink"].options)


def test_replicas_start_after_the_schema_is_migrated_once():
    assert SERVICES["migrate"]["command"][0] == "migrate"
    for name in ("gateway", "worker"):
        needs = SERVICES[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["postgres"]["condition"] == "service_healthy"


def test_the_load_balancer_spreads_over_the_gateway_replicas():
    (mount,) = SERVICES["lb"]["volumes"]
    conf = (ROOT / mount.split(":")[0]).read_text()
    assert "server gateway:8080" in conf and "proxy_pass http://hookgate" in conf
    assert SERVICES["lb"]["ports"] == ["8080:8080"]


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker is not installed")
def test_docker_compose_accepts_the_file():
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                   check=True, cwd=ROOT)  # fmt: skip
