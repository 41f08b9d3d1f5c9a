"""docker-compose.yml, checked for structure (no Docker engine runs here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
import yaml

from coalmine.cli import build_parser
from runtime.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SETTINGS_VARS = {ENV_PREFIX + f.name.upper() for f in msgspec.structs.fields(Settings)}


def test_it_gives_every_service_an_image_or_a_build() -> None:
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name


def test_it_runs_every_role_of_the_service() -> None:
    commands = {name: service.get("command") for name, service in SERVICES.items()}
    roles = {c[0] if isinstance(c, list) else str(c).split()[0] for c in commands.values() if c}
    assert {"create-topics", "migrate", "store", "worker", "api"} <= roles


def test_it_uses_only_settings_that_exist() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\bCOALMINE_[A-Z_]+\b", text))
    unknown = {name for name in used if name not in SETTINGS_VARS} - {"COALMINE_ADMIN_TOKEN"}
    assert not unknown
    assert "COALMINE_ADMIN_TOKEN" in SETTINGS_VARS


def test_it_parses_every_service_command_with_the_cli() -> None:
    parser = build_parser()
    for service in SERVICES.values():
        command = service.get("command")
        if service.get("build") and command:
            parser.parse_args(command if isinstance(command, list) else command.split())


def test_it_waits_for_healthy_dependencies_and_binds_ports_to_loopback() -> None:
    for name in ("redpanda", "clickhouse"):
        assert "healthcheck" in SERVICES[name], name
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES
            assert condition["condition"] in {
                "service_healthy",
                "service_started",
                "service_completed_successfully",
            }


def test_it_demands_secrets_instead_of_defaulting_them() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${COALMINE_ADMIN_TOKEN:?" in text
    assert "${CLICKHOUSE_PASSWORD:?" in text


# --- the whole production stack: dependencies, volumes, the proxy, Grafana --------------------

ONE_SHOT = {name for name, service in SERVICES.items() if service.get("restart") == "no"}
PLUGIN_VERSION = "4.20.0"  # the expansion tests/grafana_plugin.py follows


def test_it_runs_the_whole_stack() -> None:
    assert {
        "redpanda", "clickhouse", "create-topics", "migrate", "store", "worker", "api",
        "proxy", "grafana",
    } <= set(SERVICES)  # fmt: skip
    assert ONE_SHOT == {"create-topics", "migrate"}


def test_it_gives_healthchecks_to_what_others_wait_on_and_to_every_published_port() -> None:
    for name, service in SERVICES.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], (name, dependency)
            if condition["condition"] == "service_completed_successfully":
                assert dependency in ONE_SHOT, (name, dependency)
        if service.get("ports"):
            assert "healthcheck" in service, name


def test_it_passes_the_service_only_settings() -> None:
    """The service's containers are configured through COALMINE_* settings, nothing else."""
    for name, service in SERVICES.items():
        if "build" in service:
            for variable in service.get("environment") or {}:
                assert variable in SETTINGS_VARS, (name, variable)


def test_it_keeps_state_in_named_volumes_and_mounts_files_that_exist() -> None:
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("${"):  # a host path the operator must give (`:?` required)
                assert re.match(r"\$\{[A-Z_]+:\?", volume), (name, volume)
            elif source.startswith("."):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)


def test_it_scales_the_api_behind_one_published_port() -> None:
    api, proxy = SERVICES["api"], SERVICES["proxy"]
    assert "ports" not in api  # replicas would clash on a published port
    assert proxy["ports"] == ["127.0.0.1:8443:8443"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    # The limiter's share per process follows the number of replicas.
    assert api["environment"]["COALMINE_API_WORKERS"] == api["deploy"]["replicas"]
    config = COMPOSE["configs"][proxy["configs"][0]["source"]]["content"]
    assert "resolver 127.0.0.11" in config and "http://api:8000" in config


def test_it_provisions_grafana_with_the_plugin_and_the_dashboards() -> None:
    grafana = SERVICES["grafana"]
    environment = grafana["environment"]
    assert environment["GF_PLUGINS_PREINSTALL_SYNC"] == (
        f"grafana-clickhouse-datasource@{PLUGIN_VERSION}"
    )
    assert PLUGIN_VERSION in (ROOT / "tests" / "grafana_plugin.py").read_text()
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    provisioning = ROOT / "dashboards" / "provisioning"
    provider = yaml.safe_load((provisioning / "dashboards" / "coalmine.yaml").read_text())
    assert mounts["./dashboards/provisioning/dashboards"] == "/etc/grafana/provisioning/dashboards"
    provider = provider["providers"][0]
    assert mounts["./dashboards/json"] == provider["options"]["path"]
    assert mounts["./dashboards/provisioning/datasources"] == (
        "/etc/grafana/provisioning/datasources"
    )
    assert list((ROOT / "dashboards" / "json").glob("*.json"))
    # The data source reads the ClickHouse password from Grafana's environment.
    assert "$CLICKHOUSE_PASSWORD" in (provisioning / "datasources" / "clickhouse.yaml").read_text()
    assert "${CLICKHOUSE_PASSWORD:?" in environment["CLICKHOUSE_PASSWORD"]
    assert "${GRAFANA_ADMIN_PASSWORD:?" in (ROOT / "docker-compose.yml").read_text()


def test_it_terminates_tls_in_the_proxy_with_certificates_from_the_host() -> None:
    proxy = SERVICES["proxy"]
    (mount,) = proxy["volumes"]
    assert mount.startswith("${TLS_CERTS_DIR:?") and mount.endswith(":/etc/nginx/certs:ro")
    config = COMPOSE["configs"][proxy["configs"][0]["source"]]["content"]
    assert "listen 8443 ssl;" in config
    assert "ssl_certificate /etc/nginx/certs/tls.crt;" in config
    assert "ssl_certificate_key /etc/nginx/certs/tls.key;" in config
    # Plain HTTP is not published: only the healthcheck inside the container uses it.
    assert "8000" in proxy["healthcheck"]["test"][1]
    assert not any(":8000" in port for port in proxy["ports"])


def test_it_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    if not checker.exists():
        pytest.skip("check-jsonschema is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
