"""The source documents' requests, as printed, through ``target-proxy serve`` with the README's defaults (the
embedded emulator, no setting but client keys): what a user of those APIs sends on day one."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import ServerProcess, serve_as_the_readme_does
from tests.support import wait_for

PROFILE_KEY = "profile-key-drop-in-0001"
ADMIN_KEY = "admin-key-drop-in-000001"
ACTIVATION_KEY = "activation-key-drop-in-01"
KEYS = {PROFILE_KEY: ["profile"], ADMIN_KEY: ["admin"], ACTIVATION_KEY: ["activation"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = tmp_path_factory.mktemp("drop-in")
    server = serve_as_the_readme_does(state, KEYS)
    yield server
    server.stop()


@pytest.fixture
def gateway(served: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        yield client


def test_an_external_audience_is_created_on_the_default_sandbox(gateway: httpx.Client) -> None:
    body = {
        "name": "Loyalty members",
        "description": "From the CRM",
        "fields": [{"name": "email", "type": "string", "identityNs": "email"}],
        "sourceSpec": {"path": "s3://bucket/loyalty.csv", "type": "file", "cloudType": "S3", "baseConnectionId": "c"},
        "audienceType": "people",
        "originName": "CUSTOM_UPLOAD",
    }
    headers = {"Authorization": f"Bearer {ACTIVATION_KEY}"}
    created = gateway.post("/data/core/ais/external-audience/", json=body, headers=headers)
    assert created.status_code == 202, created.text
    named = gateway.post(
        "/data/core/ais/external-audience/", json={**body, "name": "Dev"}, headers={**headers, "x-sandbox-name": "dev"}
    )
    assert named.status_code == 202, named.text


def test_bulk_profile_update_v1_updates_existing_profiles(gateway: httpx.Client, served: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {PROFILE_KEY}", "Content-Type": "application/x-www-form-urlencoded"}
    v2 = gateway.post(
        "/m2/demo/v2/profile/batchUpdate", content=b"batch=pcId%2Cplan%0Av1-known%2Cfamily%0A", headers=headers
    )
    assert v2.status_code == 200 and "<success>true</success>" in v2.text
    v1 = gateway.post(
        "/m2/demo/profile/batchUpdate",
        content=b"batch=pcId%2Cplan%0Av1-known%2Csolo%0Av1-unknown%2Csolo%0A",
        headers=headers,
    )
    assert v1.status_code == 200, v1.text
    assert "<success>true</success>" in v1.text and "1 of 2 profiles updated" in v1.text

    def plan(tnt_id: str) -> str | None:
        answer = httpx.get(f"{served.urls['emulator']}/rest/v1/profiles/{tnt_id}", params={"client": "demo"})
        return answer.json()["profileAttributes"].get("plan", {}).get("value") if answer.status_code == 200 else None

    assert wait_for(lambda: plan("v1-known") == "solo" or None), "v1 updated the profile that exists"
    assert plan("v1-unknown") is None, "and created none"


def test_a_view_identified_by_its_marketing_cloud_visitor_id_gets_a_tnt_id(gateway: httpx.Client) -> None:
    view = {"mbox": "home-hero", "marketingCloudVisitorId": "07327024324407615852684217835002469599"}
    first = gateway.post("/rest/v1/mbox?client=demo", json=view).json()
    again = gateway.post("/rest/v1/mbox?client=demo", json=view).json()
    assert re.fullmatch(r"[\w-]+", first["tntId"]) and first["tntId"] == again["tntId"]
    assert first["marketingCloudVisitorId"] == view["marketingCloudVisitorId"]
    third_party = gateway.post("/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": "tp-1"}).json()
    assert "tntId" not in third_party, "unless a thirdPartyId is given"


@pytest.mark.parametrize(
    "path", ["/rest/v1/mbox", "/rest/v1/mbox/session-1", "/rest/v2/batchmbox", "/rest/v1/delivery"]
)
def test_other_methods_on_delivery_paths_are_405(gateway: httpx.Client, path: str) -> None:
    answer = gateway.get(path, params={"client": "demo"})
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert answer.json() == {
        "status": 405,
        "message": "GET is not allowed here: this path takes POST",
        "field": "method",
    }


def test_admin_answers_carry_the_documents_fields(gateway: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    ab = gateway.get("/demo/target/activities/ab/200001", headers=headers).json()
    xt = gateway.get("/demo/target/activities/xt/200002", headers=headers).json()
    assert ab["autoAllocateTraffic"] == {"enabled": False, "successEvaluationCriteria": "conversion_rate"}
    assert set(xt["analytics"]) == {"reportSuite", "dataCollectionHost"} and "autoAllocateTraffic" in xt
    report = gateway.get("/demo/target/activities/abt/200001/report/performance", headers=headers)
    assert report.status_code == 200 and "statistics" in report.json()["report"]
    audience = gateway.get("/demo/target/audiences/1000001", headers=headers).json()
    assert isinstance(audience["description"], str)
