"""Headless Chromium for the UI's browser tests: Debian's package (Playwright's own browser
download needs the internet), installed here when missing and this runs as root with apt-get;
otherwise the tests skip, saying why."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess

CANDIDATES = ("chromium", "chromium-browser")
INSTALL_TIMEOUT_S = 900


def _found() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def chromium_or_reason() -> tuple[str | None, str]:
    """(path of a Chromium executable, "") or (None, why there is none)."""
    if importlib.util.find_spec("playwright") is None:
        return None, "playwright is not installed (pip install -e '.[test]')"
    path = _found()
    if path:
        return path, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return (
            None,
            "no chromium on PATH, and apt-get cannot install it here (not root or not Debian)",
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "install", "-y", "-qq", "chromium"],
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium"],
    ):
        try:
            subprocess.run(
                command, env=env, capture_output=True, timeout=INSTALL_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"installing chromium failed: {exc}"
        path = _found()
        if path:
            return path, ""
    return None, "apt-get install chromium did not provide a chromium executable"
