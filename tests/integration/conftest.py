from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running stack shared by the tests that only talk to it."""
    running = Stack(tmp_path_factory.mktemp("stack"))
    try:
        running.start_all()
        # Errors alert every channel by default, and every test here makes channels of its
        # own: one catch-all rule keeps each test's receivers to what the test itself causes.
        # The routing tests run stacks of their own, with the defaults.
        silence = {"type": "any", "name": "*", "mode": "silent", "priority": 1_000_000}
        assert running.admin().post("/api/v1/admin/routes", json=silence).status_code == 201
        yield running
    finally:
        running.stop()


@pytest.fixture()
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of the test's own, for tests that kill or stop parts of it."""
    running = Stack(tmp_path, append_timeout_s=2.0)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def ingest_key(stack: Stack) -> str:
    return stack.create_key("contract-tests")["key"]
