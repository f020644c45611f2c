"""The status page, rendered by a real headless Chromium: the figures appear."""

from __future__ import annotations

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
        assert int(cell(dom, "bytes")) > 0
        assert cell(dom, "sessions") == "1"
        assert cell(dom, "backlog") == "3"
        assert cell(dom, "dead-lettered") == "0"


def test_without_the_key_the_page_shows_no_figures(gateway_settings: dict[str, Any], tmp_path: Path) -> None:
    with own_gateway(gateway_settings) as gw:
        dom = rendered(f"{gw.url}/_proxy/", tmp_path / "profile")
        assert cell(dom, "hit-rate") == "-"
        assert "client key" in re.search(r'<p id="message">([^<]*)</p>', dom).group(1)  # type: ignore[union-attr]
        assert gw.client.get("/_proxy/status").status_code == 401


@pytest.mark.parametrize("path", ["/_proxy/status", "/_proxy/cache", "/_proxy/queue"])
def test_operator_endpoints_need_the_operator_scope(gateway_settings: dict[str, Any], path: str) -> None:
    from tests.conftest import PROFILE_KEY

    with own_gateway(gateway_settings) as gw:
        assert gw.client.get(path).status_code == 401
        assert gw.client.get(path, headers={"Authorization": f"Bearer {PROFILE_KEY}"}).status_code == 403
        assert gw.client.get(path, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}).status_code == 200
