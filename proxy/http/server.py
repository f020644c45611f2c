"""Running ASGI apps on uvicorn over sockets bound before the server starts.

Binding first lets ``--port 0`` report the port it got, lets the gateway hand the emulator its socket,
and lets several workers share one listening socket.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from functools import partial
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from proxy.http.protocol import GuardedHttpToolsProtocol
from proxy.settings import Settings, to_environ

PR_SET_PDEATHSIG = 1  # prctl(2)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the gateway's HTTPS, when configured."""
    if settings.tls_certfile is None or settings.tls_keyfile is None:
        return {}
    return {"ssl_certfile": str(settings.tls_certfile), "ssl_keyfile": str(settings.tls_keyfile)}


def uvicorn_config(app: Any, settings: Settings, **extra: Any) -> uvicorn.Config:
    """The gateway's: uvicorn's protocol with the gateway's limits on heads and bodies."""
    guarded = partial(
        GuardedHttpToolsProtocol,
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_seconds,
        body_timeout_s=settings.body_timeout_seconds,
    )
    return plain_config(app, settings.log_level, http=guarded, **extra)


def plain_config(app: Any, log_level: str, http: Any = "httptools", **extra: Any) -> uvicorn.Config:
    """uvicorn as both servers run: uvloop, httptools (or ``http``, a protocol built on it), JSON logs."""
    return uvicorn.Config(
        app,
        loop="uvloop",
        http=http,
        lifespan="on",
        access_log=False,  # the gateway writes its own request log
        log_config=None,  # and formats uvicorn's messages as JSON too (proxy.ops.logs)
        log_level=log_level,
        timeout_graceful_shutdown=30,
        **extra,
    )


def run_plain(app: Any, sock: socket.socket, log_level: str) -> None:
    """Serve an app other than the gateway (the emulator) on uvicorn's own protocol until SIGINT/SIGTERM."""
    uvicorn.Server(plain_config(app, log_level)).run(sockets=[sock])


def run(app: Any, sock: socket.socket, settings: Settings, workers: int = 1, tls: bool = False) -> None:
    """Serve until SIGINT/SIGTERM. With several workers ``app`` must be an import string of a factory;
    ``tls``: HTTPS with the settings' certificate (the gateway's port, never the emulator's)."""
    secure = tls_options(settings) if tls else {}
    if workers == 1:
        uvicorn.Server(uvicorn_config(app, settings, **secure)).run(sockets=[sock])
        return
    os.environ.update(to_environ(settings))
    # Each worker writes its metrics here; a scrape of any worker adds them all up.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="target-proxy-metrics-")
    config = uvicorn_config(app, settings, factory=True, workers=workers, **secure)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def spawn_emulator(sock: socket.socket, environ: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start the emulator in its own process on an already-bound socket; it ends with the gateway's process,
    even one killed outright. It runs in a session of its own, so that a Ctrl-C in the terminal or a
    SIGTERM to the process group stops the gateway first: the gateway sends what it still holds to the
    emulator while it shuts down, then the emulator ends with it."""
    env = {**os.environ, **environ}  # the emulator's settings
    fd = sock.fileno()
    command = [sys.executable, "-m", "proxy", "emulator", "--fd", str(fd)]
    return subprocess.Popen(command, pass_fds=[fd], env=env, preexec_fn=die_with_parent, start_new_session=True)


def die_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the parent's process ends (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
