"""Real local receivers for what Coalmine sends out: an HTTP server standing in for webhook and
Slack endpoints, and an aiosmtpd SMTP server. Both listen on 127.0.0.1 on a free port, run in a
thread, record everything they receive, and are context managers:

    with HttpReceiver() as hook, SmtpReceiver() as smtp:
        hook.queue(500, 500)             # the next two requests fail, then the default answers
        ...                              # point a channel at hook.url("/path") / smtp.port
        hook.wait_for_requests(3)[-1].json()
        smtp.wait_for_mails(1)[0].message["Subject"]
"""

from __future__ import annotations

import collections
import email
import email.policy
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.conftest import wait_for

LOCALHOST = "127.0.0.1"


# --- HTTP ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Read the request, record it, then answer nothing until the receiver closes: a receiver
    # that accepted the connection and hangs (the client's read timeout must fire).
    hang: bool = False


HANG = Reply(hang=True)


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of alerts would wait on TCP SYN
    # retries (1 s, 3 s...) and the tests would measure the receiver.
    request_queue_size = 1024
    daemon_threads = True


class HttpReceiver:
    """Answers every request with the queued replies, in order, then with `default`."""

    def __init__(self, default: Reply | int = Reply()) -> None:
        self.default = _reply(default)
        self._replies: collections.deque[Reply] = collections.deque()
        self._requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server((LOCALHOST, 0), _handler_for(self))
        self._server.daemon_threads = True  # hung handlers must not hold up close()
        self.port = self._server.server_address[1]
        # A short poll keeps close() (shutdown waits for the loop to look) from costing 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = "/") -> str:
        return f"http://{LOCALHOST}:{self.port}{path}"

    def queue(self, *replies: Reply | int) -> None:
        with self._lock:
            self._replies.extend(_reply(r) for r in replies)

    def fail_first(self, k: int, status: int = 500) -> None:
        self.queue(*[status] * k)

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, n: int, timeout_s: float = 10.0) -> list[ReceivedRequest]:
        return wait_for(
            lambda: len(self.requests) >= n and self.requests, timeout_s, f"{n} HTTP requests"
        )

    def _take(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            return self._replies.popleft() if self._replies else self.default

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _reply(reply: Reply | int) -> Reply:
    return reply if isinstance(reply, Reply) else Reply(status=reply)


def _handler_for(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            request = ReceivedRequest(
                self.command,
                self.path,
                {name.lower(): value for name, value in self.headers.items()},
                self._read_body(),
            )
            reply = receiver._take(request)
            if reply.hang:
                receiver._closing.wait()
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test's own assertions say what matters

    return Handler


# --- SMTP ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    tls: bool  # the session had switched to TLS (STARTTLS) before DATA
    login: str | None  # the user that authenticated, if any

    def part(self, content_type: str) -> str:
        """The decoded text of the first part of this type, e.g. "text/html"."""
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return str(part.get_content())  # type: ignore[attr-defined]
        raise KeyError(content_type)


class SmtpReceiver:
    """An aiosmtpd server that keeps every message. With `users` it offers AUTH, checked
    against that login -> password map, and records who logged in (ReceivedMail.login); with
    `tls` (a server context, see SelfSignedTls) it offers STARTTLS and requires it before MAIL
    and before AUTH."""

    def __init__(
        self, *, users: Mapping[str, str] | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self._mails: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self.users = dict(users or {})
        self.port = _free_port()
        options: dict[str, Any] = {}
        if tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if users is not None:
            # aiosmtpd refuses AUTH over plain text unless told; without TLS there is no
            # other way to test credentials.
            options.update(authenticator=self._authenticate, auth_require_tls=tls is not None)
        self._controller = Controller(
            _Recorder(self),
            hostname=LOCALHOST,
            port=self.port,
            server_hostname="localhost",
            **options,
        )

    @property
    def host(self) -> str:
        return LOCALHOST

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._mails)

    def wait_for_mails(self, n: int, timeout_s: float = 10.0) -> list[ReceivedMail]:
        return wait_for(lambda: len(self.mails) >= n and self.mails, timeout_s, f"{n} mails")

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        ok = login in self.users and self.users[login] == password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    def _keep(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._mails.append(mail)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


class _Recorder:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.receiver._keep(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,  # type: ignore[arg-type]
                raw=raw,
                tls=session.ssl is not None,
                login=session.auth_data if session.authenticated else None,
            )
        )
        return "250 OK"


def _free_port() -> int:
    # aiosmtpd's Controller checks its port by connecting to it, so it cannot be given port 0;
    # take one the kernel just handed out instead.
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return probe.getsockname()[1]


# --- TLS -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SelfSignedTls:
    cert: Path
    key: Path

    def server(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def self_signed_tls(directory: Path) -> SelfSignedTls:
    """A certificate for 127.0.0.1 and localhost, made with the openssl command (the
    `cryptography` package is not a dependency)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return SelfSignedTls(cert, key)
