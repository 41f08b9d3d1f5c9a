"""What the service keeps on this machine is its own user's only: the data directory, its
secrets, chDB's files and the store's query socket (other local users must read nothing)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Set by every service process before it creates a file: what it creates (chDB's files, the
# metrics, Faust's, the admin token, sockets) is then its user's only, whoever wrote it.
SERVICE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_SOCKET_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) or close an existing one to other users."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR_MODE)


def private_unix_socket(path: Path, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A unix socket bound at `path` that only this user may connect or send to (the socket
    file's mode decides who may; uvicorn's own `uds` makes it 0666); a stream one listens."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, kind)
    previous = os.umask(SERVICE_UMASK)
    try:
        sock.bind(str(path))
    finally:
        os.umask(previous)
    path.chmod(PRIVATE_SOCKET_MODE)
    if kind == socket.SOCK_STREAM:
        sock.listen(128)
    return sock


_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket, as the kernel saw it at
    connect() time (SO_PEERCRED): it cannot be forged by the peer."""
    _, uid, _ = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return uid


class OwnerOnlyProtocol(HttpToolsProtocol):
    """HTTP over a unix socket for this user's processes only: a connection from another uid
    is closed before a byte of it is read, whatever the socket file's mode or location."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is None or peer_uid(sock) != os.getuid():
            transport.close()
