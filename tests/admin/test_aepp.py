"""Adobe's Experience Platform client, ``aepp`` 0.6.0 (PyPI), unchanged, through ``target-proxy serve`` on its
embedded emulator (the README's defaults, plus a client key with the activation scope): segment jobs, export
jobs, external audiences and their ingestion runs, and the flow run behind an ad-hoc activation, one test
per operation so that a failure names it. aepp runs in a process of its own (``aepp_scenarios.py``): it
keeps its configuration in module globals."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from proxy.emulator import aep
from tests.servers import serve_as_the_readme_does

HERE = Path(__file__).resolve().parent
ACTIVATION_KEY = "activation-key-for-aepp-01"
OPERATIONS = [
    "createJob",
    "getJob",
    "getJobs",
    "deleteJob",
    "createExport",
    "getExport",
    "getExportJobs",
    "deleteExport",
    "createExtenalAudience",  # aepp's own spelling
    "getExternalAudienceStatus",
    "runExternalAudienceJob",
    "getExternalAudienceJob",
    "getRun",
    "createAdHocDatasetExport",
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("aepp")
    server = serve_as_the_readme_does(state, {ACTIVATION_KEY: ["activation"]})
    try:
        # An ad-hoc activation (aepp 0.6.0 has no method for one) gives the flow run aepp reads back.
        started = httpx.post(
            f"{server.url}/data/core/activation/disflowprovider/adhocrun",
            json={"activationInfo": {aep.SFTP_DESTINATION: [aep.US_WORKERS]}},
            headers={
                "Authorization": f"Bearer {ACTIVATION_KEY}",
                "Accept": "application/vnd.adobe.adhoc.activation+json; version=2",
            },
            timeout=10,
        )
        assert started.status_code == 200, started.text
        run_id = urlsplit(started.json()["order"][0]["statusURL"]).path.rsplit("/", 1)[1]
        run = subprocess.run(
            [
                sys.executable,
                str(HERE / "aepp_scenarios.py"),
                server.url,
                ACTIVATION_KEY,
                server.urls["emulator"],
                run_id,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    yield json.loads(run.stdout.strip().splitlines()[-1])


def test_every_operation_ran(results: dict[str, Any]) -> None:
    assert list(results) == OPERATIONS


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_operation_works_through_the_gateway(results: dict[str, Any], operation: str) -> None:
    assert results[operation]["ok"], results[operation]


def test_jobs_ran_in_the_default_sandbox(results: dict[str, Any]) -> None:
    assert results["createJob"]["value"]["sandbox"]["sandboxName"] == "prod"


def test_an_ad_hoc_dataset_exports_status_link_points_at_the_gateway(results: dict[str, Any]) -> None:
    (destination,) = results["createAdHocDatasetExport"]["value"]["destinations"]
    (dataset,) = destination["datasets"]
    assert dataset["id"] == "loyalty-dataset-1"
    assert urlsplit(dataset["statusURL"]).hostname == "127.0.0.1"
    assert urlsplit(dataset["statusURL"]).path.startswith("/data/foundation/flowservice/runs/")
