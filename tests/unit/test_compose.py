"""docker-compose.yml, checked for structure (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import yaml

from coalmine.cli import build_parser
from coalmine.settings import ENV_PREFIX, Settings

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
    for name, service in SERVICES.items():
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
