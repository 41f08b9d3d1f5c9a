"""HTTPS for the API: its certificate and key, checked before anything starts (a bad file is
one clear line, not a traceback from a child process), and what clients (the CLI, the
launcher's readiness probe) verify the service with."""

from __future__ import annotations

import ssl
from pathlib import Path

from runtime.settings import Settings, SettingsError

CERT = "COALMINE_TLS_CERT (--tls-cert)"
KEY = "COALMINE_TLS_KEY (--tls-key)"


def check_server_tls(settings: Settings) -> None:
    """SettingsError, naming the setting, unless TLS is off or the certificate chain and key
    are readable PEM files that belong together."""
    cert, key = settings.tls_cert, settings.tls_key
    if not cert and not key:
        return
    if not (cert and key):
        raise SettingsError(f"{CERT} and {KEY} go together: set both, or neither for plain HTTP")
    for name, path in ((CERT, cert), (KEY, key)):
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise SettingsError(f"cannot read {name} {path}: {exc.strerror}") from None
    try:
        # An empty password: an encrypted key fails here instead of prompting on a terminal.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=b"")
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise SettingsError(f"{KEY} {key} is not the private key of {CERT} {cert}") from None
        raise SettingsError(
            f"{CERT} {cert} and {KEY} {key} must be a PEM certificate chain and its unencrypted"
            f" private key ({exc.reason or exc})"
        ) from None


def client_verify(settings: Settings) -> ssl.SSLContext:
    """The system's CAs, plus COALMINE_TLS_CA and the service's own certificate when they are
    set: on the machine that serves it, a self-signed certificate is then trusted as is."""
    context = ssl.create_default_context()
    for name, path in (("COALMINE_TLS_CA (--tls-ca)", settings.tls_ca), (CERT, settings.tls_cert)):
        if not path:
            continue
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"cannot use {name} {path} to verify the service: {exc}") from None
    return context
