"""`coalmine up` run as a user runs it, in a subprocess, for the tests that need the launcher
itself (its supervision, its clean stop), not just the roles it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import wait_for


class Up:
    """`coalmine up` in a subprocess, its output collected line by line."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = port
        self.data_dir = data_dir
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coalmine",
                "up",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={
                k: v
                for k, v in {**os.environ, **(env or {})}.items()
                if k != "COALMINE_ADMIN_TOKEN"
            },
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        wait_for(
            lambda: (
                self.process.poll() is None
                and any("Coalmine is up at" in line for line in self.lines)
                or self._exited()
            ),
            90,
            "coalmine up to print its URL",
        )

    def _exited(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"coalmine up exited {self.process.returncode}: {self.lines}")
        return False

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def pids(self, role: str) -> list[int]:
        """The live processes of a role (`api`, `store`, `worker`, or `broker`)."""
        found = []
        for pid in descendants(self.process.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            is_role = argv[1:4] == [b"-m", b"coalmine", role.encode()]
            is_broker = role == "broker" and b"tansu" in argv[0]
            if (is_role or is_broker) and alive(pid):
                found.append(pid)
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        # What the service said, in the report of a failed test (pytest shows captured output).
        print("\n".join(["--- coalmine up said (last 200 lines):", *self.lines[-200:]]))
        return code


def descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()
