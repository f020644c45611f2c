"""The status page, rendered by a real headless Chromium: the figures appear."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import OPERATOR_KEY
from tests.gateways import DEMO_MBOXES, own_gateway

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def rendered(url: str, profile: Path) -> str:
    """The page's DOM after its script ran (Chromium flags for a closed network and no sandbox as root)."""
    assert CHROMIUM is not None, "Debian's chromium is needed (apt-get install chromium)"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout


def cell(dom: str, name: str) -> str:
    match = re.search(rf'<dd id="{name}"[^>]*>([^<]*)</dd>', dom)
    assert match, f"no {name} on the page"
    return html.unescape(match.group(1))


def tone(dom: str, name: str) -> str:
    match = re.search(rf'<dd id="{name}" class="([^"]*)"', dom)
    assert match, f"no {name} with a class on the page"
    return match.group(1)


def test_the_status_page_shows_live_figures(
    gateway_settings: dict[str, Any], emulator: httpx.Client, tmp_path: Path
) -> None:
    with own_gateway(gateway_settings, prefetch_groups={"demo": DEMO_MBOXES}, notification_max_delay_ms=600_000) as gw:
        for mbox in ("home-hero", "home-hero", "home-banner", "product-reco"):
            gw.client.post("/rest/v1/mbox?client=demo", json={"mbox": mbox, "thirdPartyId": "status-page"})
        dom = rendered(f"{gw.url}/_proxy/#key={OPERATOR_KEY}", tmp_path / "profile")
        assert cell(dom, "upstream") == "reachable"
        assert cell(dom, "ready") == "yes"
        assert cell(dom, "hit-rate") == "75.0 %"
        assert cell(dom, "lookups") == "3 / 1"
        assert cell(dom, "entries") == str(len(DEMO_MBOXES))
        assert re.fullmatch(r"\d+\.\d (KB|MB)|\d+ B", cell(dom, "bytes")), cell(dom, "bytes")
        assert cell(dom, "sessions") == "1"
        assert cell(dom, "backlog") == "3 of 200000" and tone(dom, "backlog") == "good"
        assert cell(dom, "dead-lettered") == "0"
        assert cell(dom, "failing") == "none"
        assert re.fullmatch(r"process \d+ on \S+", cell(dom, "worker"))
        updated = re.search(r'<p id="updated"[^>]*>([^<]*)</p>', dom)
        assert updated and re.fullmatch(r"updated \d\d:\d\d:\d\d UTC \(every 2 s\)", updated.group(1))


def test_the_page_names_failing_checks_and_an_amber_backlog(
    gateway_settings: dict[str, Any], emulator: httpx.Client, tmp_path: Path
) -> None:
    emulator.post("/_emulator/faults", json={"status": 503}).raise_for_status()
    settings = {**gateway_settings, "ims_client_id": "emulator-client-id", "ims_client_secret": "wrong-secret"}
    with own_gateway(settings, notification_max_backlog=4, notification_max_delay_ms=600_000) as gw:
        notes = [{"id": f"n-{n}", "type": "display", "timestamp": 1_700_000_000_000, "tokens": ["t"]} for n in (1, 2)]
        body = {"id": {"thirdPartyId": "amber-1"}, "context": {"channel": "web"}, "notifications": notes}
        assert gw.client.post("/rest/v1/delivery?client=demo&sessionId=s", json=body).status_code == 200
        dom = rendered(f"{gw.url}/_proxy/#key={OPERATOR_KEY}", tmp_path / "profile")
    assert cell(dom, "ready") == "no"
    failing = cell(dom, "failing")
    assert failing.startswith("upstream (answered 503)") and "; credentials (" in failing, failing
    assert cell(dom, "backlog") == "2 of 4" and tone(dom, "backlog") == "warn", "amber from half the bound"


def test_the_page_is_never_cached_and_runs_only_its_own_script(gateway_settings: dict[str, Any]) -> None:
    with own_gateway(gateway_settings) as gw:
        page = gw.client.get("/_proxy/")
        status = gw.client.get("/_proxy/status", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert page.headers["cache-control"] == "no-store" and status.headers["cache-control"] == "no-store"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "unsafe-inline" not in policy
    script = re.search(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy, "the page's own script is the only one allowed"


def test_without_the_key_the_page_shows_no_figures(gateway_settings: dict[str, Any], tmp_path: Path) -> None:
    with own_gateway(gateway_settings) as gw:
        dom = rendered(f"{gw.url}/_proxy/", tmp_path / "profile")
        assert cell(dom, "hit-rate") == "-"
        assert "client key" in re.search(r'<p id="message"[^>]*>([^<]*)</p>', dom).group(1)  # type: ignore[union-attr]
        assert gw.client.get("/_proxy/status").status_code == 401


@pytest.mark.parametrize("path", ["/_proxy/status", "/_proxy/cache", "/_proxy/queue"])
def test_operator_endpoints_need_the_operator_scope(gateway_settings: dict[str, Any], path: str) -> None:
    from tests.conftest import PROFILE_KEY

    with own_gateway(gateway_settings) as gw:
        assert gw.client.get(path).status_code == 401
        assert gw.client.get(path, headers={"Authorization": f"Bearer {PROFILE_KEY}"}).status_code == 403
        assert gw.client.get(path, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}).status_code == 200
