"""The gateway's state directory: the parent of its notification log, which also holds the log key
(``log-salt``) and the address the running gateway listens on (``listening``, read by ``healthcheck``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from proxy.settings import Settings


class StateDirError(Exception):
    """The state directory cannot be used; the message says what to fix."""


def state_dir(settings: Settings) -> Path:
    return settings.notification_store.parent


def check_writable(settings: Settings) -> None:
    """Fail before listening, with what to fix, when the notification log or its directory is not writable."""
    for path in (state_dir(settings), settings.notification_store):
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
                pass
        except OSError as exc:
            raise StateDirError(
                f"cannot write the gateway's state in {path} ({exc.strerror}): make it writable by uid "
                f"{os.getuid()} (for a bind mount: chown {os.getuid()} on the host's directory) or set "
                "notification_store (TARGET_PROXY_NOTIFICATION_STORE) to a writable place"
            ) from None
    salt = state_dir(settings) / "log-salt"
    if salt.exists() and not os.access(salt, os.R_OK):
        raise StateDirError(f"cannot read {salt}: make it readable by uid {os.getuid()}, or remove it")


def address_file(settings: Settings) -> Path:
    return state_dir(settings) / "listening"


def write_address(settings: Settings, url: str) -> None:
    path = address_file(settings)
    partial = path.with_suffix(".tmp")
    partial.write_text(url + "\n")
    partial.replace(path)


def forget_address(settings: Settings, url: str) -> None:
    path = address_file(settings)
    try:
        if path.read_text().strip() == url:
            path.unlink()
    except OSError:
        pass


def read_address(settings: Settings) -> str:
    """Where to reach the running gateway from this machine: the address it wrote, else the one the settings
    name; a wildcard address (0.0.0.0, ::) as its loopback one."""
    try:
        url = address_file(settings).read_text().strip()
    except OSError:
        scheme, host = "https" if settings.tls_certfile else "http", settings.host or "0.0.0.0"
        url = f"{scheme}://[{host}]:{settings.port}" if ":" in host else f"{scheme}://{host}:{settings.port}"
    return url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
