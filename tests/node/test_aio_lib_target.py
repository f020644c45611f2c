"""Adobe's Target Admin API client, ``@adobe/aio-lib-target`` 4.0.3, unchanged, through ``target-proxy serve``
on its embedded emulator (the README's defaults, plus a client key with the admin scope): every one of its
35 methods, one test each, so that a failure names the method."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import serve_as_the_readme_does

HERE = Path(__file__).resolve().parent
ADMIN_KEY = "admin-key-for-aio-lib-0001"
METHODS = [
    "getActivities",
    "createABActivity",
    "getABActivityById",
    "updateABActivity",
    "setActivityName",
    "setActivityState",
    "setActivityPriority",
    "setActivitySchedule",
    "getActivityChangeLog",
    "getABActivityPerformance",
    "getActivityPerformance",
    "getOrdersReport",
    "createXTActivity",
    "getXTActivityById",
    "updateXTActivity",
    "getXTActivityPerformance",
    "deleteXTActivity",
    "deleteABActivity",
    "getOffers",
    "createOffer",
    "getOfferById",
    "updateOffer",
    "deleteOffer",
    "getAudiences",
    "createAudience",
    "getAudienceById",
    "updateAudience",
    "deleteAudience",
    "getProperties",
    "getPropertyById",
    "getMBoxes",
    "getMBoxByName",
    "getMBoxProfileAttributes",
    "getEnvironments",
    "executeBatch",
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "@adobe" / "aio-lib-target").is_dir():
        pytest.fail("Node.js and the pinned packages are needed: npm ci --prefix tests/node (bash .ci/run does)")
    state = tmp_path_factory.mktemp("aio-lib-target")
    server = serve_as_the_readme_does(state, {ADMIN_KEY: ["admin"]})
    try:
        run = subprocess.run(
            [node, str(HERE / "aio_target.js"), server.url, ADMIN_KEY],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=HERE,
            check=False,
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    yield json.loads(run.stdout)


def test_the_library_has_the_methods_named_here(results: dict[str, Any]) -> None:
    assert sorted(results) == sorted(METHODS) and len(METHODS) == 35


@pytest.mark.parametrize("method", [m for m in METHODS if m != "setActivitySchedule"])
def test_the_method_works_through_the_gateway(results: dict[str, Any], method: str) -> None:
    result = results[method]
    assert result["ok"], result
    assert 200 <= result["status"] < 300


def test_set_activity_schedule_fails_for_the_librarys_own_reason(results: dict[str, Any]) -> None:
    # The library sends {"schedule": {"startsAt", "endsAt"}}; Target documents startsAt and endsAt at the top
    # level of the body, and answers 400 to this one as the emulator does.
    result = results["setActivitySchedule"]
    assert not result["ok"] and result["status"] == 400
    answer = json.loads(result["answer"])
    assert answer["errors"][0]["message"] == "startsAt: startsAt and endsAt are both required"
