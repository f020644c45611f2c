"""``target-proxy``: run the gateway (``serve``) or the emulator alone (``emulator``)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from proxy.settings import ENV_PREFIX, Settings, SettingsError, load_settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file of settings (also TARGET_PROXY_CONFIG)")
    parser.add_argument("--log-level", dest="log_level", help="critical, error, warning, info or debug")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="target-proxy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway (on the embedded emulator without --upstream)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--upstream", help="URL that upstream connections go to")
    serve.add_argument(
        "--upstream-direct",
        dest="upstream_direct",
        action="store_true",
        default=None,
        help="connect to the edge hosts themselves over HTTPS instead of starting the emulator",
    )
    serve.add_argument("--client", help="default Target client code")
    serve.add_argument("--emulator-port", dest="emulator_port", type=int)
    _common(serve)

    upload = commands.add_parser(
        "upload-profiles", help="send a CSV of profile attributes through the gateway as bulk updates"
    )
    upload.add_argument("file", type=Path, help="CSV whose first column is pcId or thirdPartyId")
    upload.add_argument("--client", required=True, help="Target client code")
    upload.add_argument("--gateway", default=os.environ.get(f"{ENV_PREFIX}GATEWAY", "http://127.0.0.1:8080"))
    upload.add_argument(
        "--key",
        default=os.environ.get(f"{ENV_PREFIX}CLIENT_KEY"),
        help=f"gateway client key with the profile scope (also {ENV_PREFIX}CLIENT_KEY)",
    )
    upload.add_argument("--batch-rows", type=int, default=500_000, help="rows per batch (at most 500,000)")

    emulator = commands.add_parser("emulator", help="run the Target emulator alone")
    emulator.add_argument("--host", dest="emulator_host")
    emulator.add_argument("--port", dest="emulator_port", type=int)
    emulator.add_argument("--catalog", dest="emulator_catalog", help="catalog JSON (default: the demo catalog)")
    emulator.add_argument("--replication-delay-ms", dest="emulator_replication_delay_ms", type=int)
    emulator.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    _common(emulator)
    return parser


def _settings(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> Settings:
    values: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in ("command", *skip)}
    try:
        return load_settings(values)
    except SettingsError as exc:
        print(f"target-proxy: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run_emulator(args: argparse.Namespace) -> None:
    from proxy import server
    from proxy.emulator.app import create_emulator_app

    settings = _settings(args, skip=("fd",))
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = server.bind(settings.emulator_host, settings.emulator_port)
        print(f"target-proxy emulator listening on {server.url_of(sock)}", flush=True)
    app = create_emulator_app(settings)
    server.run(app, sock, settings)


def emulator_credentials(settings: Settings) -> dict[str, Any]:
    """With the embedded emulator, the gateway signs in with the emulator's IMS credentials unless
    others are configured."""
    if settings.ims_client_id:
        return {}
    return {
        "ims_client_id": settings.emulator_ims_client_id,
        "ims_client_secret": SecretStr(settings.emulator_ims_client_secret),
        "ims_org_id": settings.ims_org_id or settings.emulator_ims_org_id,
    }


def exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run_gateway(args: argparse.Namespace) -> None:
    from proxy import server

    settings = _settings(args)
    emulator = None
    if settings.upstream is None and not settings.upstream_direct:
        emulator_sock = server.bind(settings.emulator_host, settings.emulator_port)
        settings = settings.model_copy(
            update={"upstream": server.url_of(emulator_sock), **emulator_credentials(settings)}
        )
        emulator = server.spawn_emulator(emulator_sock, settings)
        emulator_sock.close()
        print(f"target-proxy emulator listening on {settings.upstream}", flush=True)
    # uvicorn raises SIGTERM again once it has shut down; as an exception it lets the emulator stop too.
    signal.signal(signal.SIGTERM, exit_on_signal)
    sock = server.bind(settings.host, settings.port)
    where = settings.upstream or "the edge hosts over HTTPS"
    print(f"target-proxy gateway listening on {server.url_of(sock)} (upstream: {where})", flush=True)
    try:
        if settings.workers == 1:
            from proxy.app import create_app
            from proxy.runtime import tune_gc

            app = create_app(settings)
            tune_gc()
            server.run(app, sock, settings)
        else:
            server.run("proxy.app:create_worker_app", sock, settings, workers=settings.workers)
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=10)


def run_upload(args: argparse.Namespace) -> None:
    from proxy.bulk_upload import MAX_ROWS, Uploader, UploadError, upload

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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        run_gateway(args)
    elif args.command == "upload-profiles":
        run_upload(args)
    else:
        run_emulator(args)


if __name__ == "__main__":
    main()
