"""What `coalmine up` leaves in its data dir for others: the URL it serves (so that the CLI
finds the service it started, whatever `--port` it was given), and a mark held while it runs
(found at the next start, it says the last one never stopped: a kill -9 or a power cut)."""

from __future__ import annotations

import os

from runtime.settings import Settings

UNCLEAN_STOP_WARNING = (
    "the last `coalmine up` on this data dir did not stop cleanly (kill -9, a crash, a power"
    " cut): with the embedded in-memory broker, events acknowledged in its last moments (the"
    " sink trails by ~0.25 s) and not yet stored in ClickHouse may have been lost"
)


def record_start(settings: Settings) -> bool:
    """Write where this instance listens and mark it running; True if the previous instance
    left its mark (it never stopped cleanly). Called with the data dir's lock held."""
    died = settings.running_mark_path.exists()
    _write(settings.running_mark_path, str(os.getpid()))
    _write(settings.listen_url_path, settings.base_url)
    return died


def record_clean_stop(settings: Settings) -> None:
    settings.running_mark_path.unlink(missing_ok=True)


def recorded_url(settings: Settings) -> str | None:
    """The URL the last `coalmine up` on this data dir served, if any."""
    try:
        return settings.listen_url_path.read_text().strip() or None
    except OSError:
        return None


def _write(path: os.PathLike[str], text: str) -> None:
    """Replaced whole (a reader never sees half a URL), readable by the owner only."""
    temporary = f"{os.fspath(path)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    os.replace(temporary, path)
