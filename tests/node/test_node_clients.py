"""Adobe's Node.js clients of Target, unchanged and with their defaults, against ``target-proxy serve`` on its
embedded emulator: ``@adobe/target-nodejs-sdk`` 2.4.3 (the SDK backend services use) and
``@adobe/target-node-client`` 0.15.2 (the batch mbox API, over HTTPS on port 443). The packages are
pinned in ``package.json`` / ``package-lock.json`` beside this file; ``bash .ci/run`` installs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import OPERATOR_KEY, gateway_env
from tests.servers import ServerProcess
from tests.support import wait_for

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")


def node(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    if NODE is None or not (HERE / "node_modules" / "@adobe").is_dir():
        pytest.fail("Node.js and the pinned packages are needed: npm ci --prefix tests/node (bash .ci/run does)")
    run = subprocess.run(
        [NODE, str(HERE / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def stats(server: ServerProcess) -> dict[str, Any]:
    return httpx.get(f"{server.urls['emulator']}/_emulator/stats").json()  # type: ignore[no-any-return]


def session_of(target_cookie: str) -> str:
    return target_cookie.split("|")[0].split("#")[1]


def test_the_nodejs_sdk_gets_offers_notifies_and_reads_attributes_through_the_gateway(
    served: ServerProcess,
) -> None:
    gateway = served.url.removeprefix("http://")
    out = node("sdk_scenarios.js", gateway)

    assert out["hosts"] == [gateway], "every call went to the gateway, never an mboxedge host"
    first = out["first"]
    assert first["execute"][0]["name"] == "home-hero" and first["execute"][0]["content"]
    assert [m["name"] for m in first["prefetch"]] == ["home-banner", "product-reco"]
    assert all(m["eventToken"] for m in first["prefetch"])
    assert first["edgeHost"] is None and first["locationHint"] is None
    assert "." not in first["tntId"], "no location hint the SDK would follow"

    session = session_of(first["targetCookie"]["value"])
    assert len(out["returning"]) == 20
    for view in out["returning"]:
        assert [m["name"] for m in view["execute"]] == ["home-hero", "home-banner"]
        assert all(m["content"] for m in view["execute"])
        assert session_of(view["targetCookie"]) == session, "a returning visitor keeps its session"

    assert out["notifications"]["answered"] == ["display-0", "display-1"]
    assert out["attributes"]["layout"] == "grid"
    # 20 returning views of two mboxes: the first a miss at most, the rest hits, each display counted once
    cache = httpx.get(f"{served.url}/_proxy/cache", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}).json()
    assert cache["hits"] >= 19 * 2, cache
    displays = 2 + cache["hits"]  # the SDK's own notifications, and one per cached mbox served
    counted = wait_for(lambda: stats(served)["notifications"]["display"] >= displays and stats(served), timeout=10)
    assert counted["notifications"] == {"display": displays, "click": 0, "duplicates": 0}, "each display once"
    # The SDK reports its earlier calls' timings on each call (telemetry, on by default): every entry arrives.
    assert out["telemetrySent"] >= 20
    assert wait_for(lambda: stats(served)["telemetry"]["entries"] == out["telemetrySent"] or None, timeout=10)


def test_the_node_client_calls_the_batch_mbox_api_through_the_gateway_over_https(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.3")
    chain, key, ca = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.pem"
    certificate.private_key_pem.write_to_path(str(key))
    certificate.cert_chain_pems[0].write_to_path(str(chain))
    authority.cert_pem.write_to_path(str(ca))
    # The client speaks HTTPS to port 443 of its serverDomain, and to nothing else.
    env = gateway_env(tmp_path, tls_certfile=str(chain), tls_keyfile=str(key))
    server = ServerProcess(["serve", "--host", "127.0.0.3", "--port", "443", "--emulator-port", "0"], env=env)
    server.start(expect=["gateway", "emulator"], timeout=30)
    try:
        assert server.url == "https://127.0.0.3:443"
        out = node("batch_client.js", "127.0.0.3", env={"NODE_EXTRA_CA_CERTS": str(ca)})
        counted = stats(server)
    finally:
        server.stop()
    for answer in (out["first"], out["again"]):
        assert [m["mbox"] for m in answer["content"]] == ["home-hero", "tv-rail-1"]
        assert all(m["content"] for m in answer["content"])
        assert answer["edgeHost"] is None and answer["locationHint"] is None
    assert session_of(out["first"]["targetCookie"]) == session_of(out["again"]["targetCookie"])
    assert counted["requests"] == {"batchmbox": 2}
