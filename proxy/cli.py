"""target-proxy: a gateway in front of Adobe Target's edge, and an emulator of Target's APIs.

Commands: serve runs the gateway (on the embedded emulator when no upstream is set), emulator runs the
emulator alone, upload-profiles sends a CSV of profile attributes through a running gateway, healthcheck
asks a running gateway whether it is alive.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from proxy import __version__, config
from proxy.config import ENV_PREFIX, SettingsError
from proxy.emulator import settings as emulator_settings
from proxy.emulator.settings import EmulatorSettings
from proxy.settings import Settings, load_settings

HELP = {
    "host": "address to listen on",
    "port": "port to listen on (0: any free port)",
    "workers": "worker processes sharing the port",
    "upstream": "URL that upstream connections go to (unset: the embedded emulator)",
    "upstream_direct": "connect to the edge hosts themselves over HTTPS instead of starting the emulator",
    "client": "default Target client code",
    "decisioning_method": "server-side, on-device (decide from the rules artifact) or hybrid",
    "emulator_host": "address the emulator listens on",
    "emulator_port": "port the emulator listens on (0: any free port)",
    "emulator_catalog": "catalog JSON (unset: the demo catalog)",
    "emulator_replication_delay_ms": "delay before a profile write reaches the other edge clusters",
    "log_level": "critical, error, warning, info or debug",
    "emulator_log_level": "critical, error, warning, info or debug",
}


# parser's prog -> setting -> option
OPTIONS: dict[str, dict[str, str]] = {}


def _option(parser: argparse.ArgumentParser, flag: str, setting: str, **kwargs: Any) -> None:
    """An option that sets a setting: its help names the default and the variable that also sets it."""
    OPTIONS.setdefault(parser.prog, {})[setting] = flag
    emulator = setting.removeprefix(emulator_settings.PREFIX)
    fields = EmulatorSettings.model_fields if emulator != setting else Settings.model_fields
    default = fields[emulator].default
    shown = "unset" if default is None else str(default).lower() if isinstance(default, bool) else default
    parser.add_argument(
        flag,
        dest=setting,
        help=f"{HELP[setting]} (default: {shown}; also {ENV_PREFIX}{setting.upper()})",
        **kwargs,
    )


def _common(parser: argparse.ArgumentParser, log_level: str = "log_level") -> None:
    parser.add_argument("--config", help=f"TOML file of settings (default: none; also {ENV_PREFIX}CONFIG)")
    _option(parser, "--log-level", log_level)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="target-proxy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"target-proxy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    serve = commands.add_parser("serve", help="run the gateway (on the embedded emulator without --upstream)")
    _option(serve, "--host", "host")
    _option(serve, "--port", "port", type=int)
    _option(serve, "--workers", "workers", type=int)
    _option(serve, "--upstream", "upstream")
    _option(serve, "--upstream-direct", "upstream_direct", action="store_true", default=None)
    _option(serve, "--client", "client")
    _option(serve, "--emulator-port", "emulator_port", type=int)
    _option(serve, "--decisioning-method", "decisioning_method", choices=["server-side", "on-device", "hybrid"])
    _common(serve)

    upload = commands.add_parser(
        "upload-profiles", help="send a CSV of profile attributes through the gateway as bulk updates"
    )
    upload.add_argument("file", type=Path, help="CSV whose first column is pcId or thirdPartyId")
    upload.add_argument("--client", required=True, help="Target client code (required)")
    upload.add_argument(
        "--gateway",
        default=os.environ.get(f"{ENV_PREFIX}GATEWAY", "http://127.0.0.1:8080"),
        help=f"address of the running gateway (default: %(default)s; also {ENV_PREFIX}GATEWAY)",
    )
    upload.add_argument(
        "--key",
        default=os.environ.get(f"{ENV_PREFIX}CLIENT_KEY"),
        help=f"gateway client key with the profile scope (default: none; also {ENV_PREFIX}CLIENT_KEY)",
    )
    upload.add_argument(
        "--batch-rows", type=int, default=500_000, help="rows per batch, at most 500,000 (default: %(default)s)"
    )
    upload.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for the gateway's answer to one batch (default: %(default)s)",
    )

    emulator = commands.add_parser("emulator", help="run the Target emulator alone")
    _option(emulator, "--host", "emulator_host")
    _option(emulator, "--port", "emulator_port", type=int)
    _option(emulator, "--catalog", "emulator_catalog")
    _option(emulator, "--replication-delay-ms", "emulator_replication_delay_ms", type=int)
    emulator.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    _common(emulator, "emulator_log_level")

    commands.add_parser(
        "healthcheck",
        help="exit 0 when the gateway running with these settings answers /healthz (a container's check)",
    )
    return parser


def options_of(command: str) -> dict[str, str]:
    """setting -> the option of ``command`` that sets it, for error messages."""
    return OPTIONS.get(f"target-proxy {command}", {})


def warn_of_unknown_variables() -> None:
    """TARGET_PROXY_* variables that name no setting of the gateway's or the emulator's."""
    for warning in config.unknown_variables([*config.names_of(Settings), *emulator_settings.names()]):
        print(f"target-proxy: {warning}", file=sys.stderr)


def _settings(args: argparse.Namespace) -> Settings:
    return _loaded(load_settings, args)


def _emulator_settings(args: argparse.Namespace) -> EmulatorSettings:
    return _loaded(emulator_settings.load_settings, args)


def _loaded(load: Any, args: argparse.Namespace) -> Any:
    try:
        values = {k: v for k, v in vars(args).items() if k not in ("command", "fd")}
        return load(values, options_of(args.command))
    except SettingsError as exc:
        print(f"target-proxy: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run_emulator(args: argparse.Namespace) -> None:
    from proxy.emulator.app import create_emulator_app
    from proxy.http import server
    from proxy.ops import logs

    settings = _emulator_settings(args)
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = server.bind(settings.host, settings.port)
        print(f"target-proxy emulator listening on {server.url_of(sock)}", flush=True)
    app = create_emulator_app(settings)
    stop_cleanly_on_signals()
    logs.configure(settings.log_level)
    server.run_plain(app, sock, settings.log_level)


def emulator_credentials(settings: Settings, emulator: EmulatorSettings) -> dict[str, Any]:
    """With the embedded emulator, the gateway signs in with the emulator's IMS credentials unless
    others are configured."""
    if settings.ims_client_id:
        return {}
    return {
        "ims_client_id": emulator.ims_client_id,
        "ims_client_secret": SecretStr(emulator.ims_client_secret),
        "ims_org_id": settings.ims_org_id or emulator.ims_org_id,
    }


def exit_on_signal(signum: int, frame: object) -> None:
    """uvicorn raises SIGTERM / SIGINT again once it has shut down cleanly: a stop that was asked for ends
    with status 0 (and, as an exception, lets the embedded emulator stop too)."""
    raise SystemExit(0)


def stop_cleanly_on_signals() -> None:
    signal.signal(signal.SIGTERM, exit_on_signal)


def run_gateway(args: argparse.Namespace) -> None:
    from proxy import state_dir
    from proxy.http import server
    from proxy.ops import logs

    settings = _settings(args)
    emulator_side = _emulator_settings(args)
    try:
        state_dir.check_writable(settings)
    except state_dir.StateDirError as exc:
        raise SystemExit(f"target-proxy: {exc}") from None
    local_redis = None
    if settings.workers > 1 and not settings.redis_url:
        # Workers are processes: they keep one session per visitor only on a store they share.
        from proxy.local_redis import LocalRedis, LocalRedisError

        try:
            local_redis = LocalRedis(settings).start()
        except LocalRedisError as exc:
            raise SystemExit(f"target-proxy: {exc}") from None
        settings = settings.model_copy(update={"redis_url": local_redis.url})
        print(f"target-proxy workers share their state on {local_redis.url}", flush=True)
    emulator = None
    if settings.upstream is None and not settings.upstream_direct:
        emulator_sock = server.bind(emulator_side.host, emulator_side.port)
        settings = settings.model_copy(
            update={"upstream": server.url_of(emulator_sock), **emulator_credentials(settings, emulator_side)}
        )
        emulator = server.spawn_emulator(emulator_sock, emulator_settings.to_environ(emulator_side))
        emulator_sock.close()
        print(f"target-proxy emulator listening on {settings.upstream}", flush=True)
    stop_cleanly_on_signals()
    sock = server.bind(settings.host, settings.port)
    where = settings.upstream or "the edge hosts over HTTPS"
    tls = settings.tls_certfile is not None
    url = server.url_of(sock, tls)
    state_dir.write_address(settings, url)
    print(f"target-proxy gateway listening on {url} (upstream: {where})", flush=True)
    logs.configure(settings.log_level)
    try:
        if settings.workers == 1:
            from proxy.app import create_app
            from proxy.ops.runtime import tune_gc

            app = create_app(settings)
            tune_gc()
            server.run(app, sock, settings, tls=tls)
        else:
            server.run("proxy.app:create_worker_app", sock, settings, workers=settings.workers, tls=tls)
    finally:
        state_dir.forget_address(settings, url)
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=10)
        if local_redis is not None:
            local_redis.stop()


def run_upload(args: argparse.Namespace) -> None:
    from proxy.management.bulk_upload import MAX_ROWS, Uploader, UploadError, upload

    if not args.key:
        raise SystemExit(f"target-proxy: a client key is needed (--key or {ENV_PREFIX}CLIENT_KEY)")
    if not 1 <= args.batch_rows <= MAX_ROWS:
        raise SystemExit(f"target-proxy: --batch-rows must be between 1 and {MAX_ROWS}")
    try:
        summary = upload(args.file, Uploader(args.gateway, args.client, args.key), max_rows=args.batch_rows)
    except (UploadError, OSError) as exc:
        raise SystemExit(f"target-proxy: {exc}") from None
    print("\n".join(summary.lines()))
    if summary.failures:
        raise SystemExit(1)


def run_healthcheck(args: argparse.Namespace) -> None:
    import ssl
    import urllib.error
    import urllib.request

    from proxy import state_dir

    url = state_dir.read_address(_settings(args))
    # The gateway's own certificate may name another host than the loopback address asked here.
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2, context=context) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        raise SystemExit(f"target-proxy: no answer from {url}/healthz: {getattr(exc, 'reason', exc)}") from None
    if status != 200:
        raise SystemExit(f"target-proxy: {url}/healthz answered {status}")
    print(f"{url}/healthz: ok")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command != "upload-profiles":
        warn_of_unknown_variables()
    if args.command == "serve":
        run_gateway(args)
    elif args.command == "upload-profiles":
        run_upload(args)
    elif args.command == "healthcheck":
        run_healthcheck(args)
    else:
        run_emulator(args)


if __name__ == "__main__":
    main()
