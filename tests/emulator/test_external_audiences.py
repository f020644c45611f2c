"""Experience Platform external audiences: create and its operation, patch, ingestion runs, delete, and
the documented error codes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.support import advance, ok, platform_headers

BASE = "/data/core/ais"
CREATE = f"{BASE}/external-audience/"


@pytest.fixture
def headers(emulator: httpx.Client) -> dict[str, str]:
    return platform_headers(emulator)


def audience_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Sample external audience",
        "description": "Loyalty export",
        "customAudienceId": "crm-42",
        "fields": [
            {"name": "email", "type": "string", "identityNs": "email", "labels": ["C1"]},
            {"name": "birthday", "type": "date"},
        ],
        "sourceSpec": {
            "path": "s3://bucket/audiences/loyalty.csv",
            "type": "file",
            "cloudType": "S3",
            "baseConnectionId": "conn-1",
        },
        "ttlInDays": "40",
        "audienceType": "people",
        "originName": "CUSTOM_UPLOAD",
        "labels": ["core/C1"],
        "tags": ["loyalty"],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def assert_ais_error(response: httpx.Response, code: str, detail: str | None = None) -> None:
    status = int(code.rsplit("-", 1)[1])
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "status", "title", "detail"} and body["type"] == code and body["status"] == status
    if detail is not None:
        assert detail in body["detail"], body


def created(client: httpx.Client, headers: dict[str, str], **overrides: Any) -> str:
    """A ready external audience's id."""
    operation = client.post(CREATE, json=audience_body(**overrides), headers=headers)
    assert operation.status_code == 202, operation.text
    ok(client.post("/_emulator/aep", json={"finish": [operation.json()["operationId"]]}))
    return ok(client.get(f"{BASE}/external-audiences/operations/{operation.json()['operationId']}", headers=headers))[
        "audienceId"
    ]


def test_creation_is_an_operation_that_yields_the_audience_id(emulator: httpx.Client, headers: dict) -> None:
    response = emulator.post(CREATE, json=audience_body(), headers=headers)

    assert response.status_code == 202
    answer = response.json()
    details = answer["operationDetails"]
    assert details["ttlInDays"] == 40 and details["namespace"] == "CustomerAudienceUpload"
    assert details["sourceSpec"] == {"params": audience_body()["sourceSpec"]}
    operation_id = answer["operationId"]
    processing = ok(emulator.get(f"{BASE}/external-audiences/operations/{operation_id}", headers=headers))
    assert processing["status"] == "PROCESSING" and "audienceId" not in processing
    advance(emulator, 2)
    done = ok(emulator.get(f"{BASE}/external-audience/operations/{operation_id}", headers=headers))
    assert done["status"] == "SUCCESS" and done["audienceName"] == "Sample external audience"
    assert done["createdBy"] == "emulator-client-id@AdobeID" and isinstance(done["createdAt"], int)
    audience = ok(emulator.get(f"{BASE}/external-audience/{done['audienceId']}", headers=headers))
    assert audience["ttlInDays"] == 40 and audience["labels"] == ["core/C1"]


def test_an_audience_is_not_found_until_its_operation_succeeds(emulator: httpx.Client, headers: dict) -> None:
    ok(emulator.post("/_emulator/aep", json={"timings": {"operation_s": 60}}))
    emulator.post(CREATE, json=audience_body(), headers=headers)
    (pending,) = ok(emulator.get("/_emulator/aep"))["externalAudiences"]

    early = emulator.patch(
        f"{BASE}/external-audience/{pending['audienceId']}", json={"description": "x"}, headers=headers
    )

    assert_ais_error(early, "100940-404")
    advance(emulator, 60)
    assert ok(emulator.get(f"{BASE}/external-audience/{pending['audienceId']}", headers=headers))["audienceName"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"ttlInDays": 0}, "ttlInDays"),
        ({"ttlInDays": 91}, "ttlInDays"),
        ({"ttlInDays": "ninety"}, "ttlInDays"),
        ({"originName": None}, "originName"),
        ({"originName": "SEGMENT"}, "originName"),
        ({"audienceType": "accounts"}, "audienceType"),
        ({"name": None}, "name"),
        ({"fields": [{"name": "email", "type": "text", "identityNs": "email"}]}, "fields[0].type"),
        ({"fields": [{"name": "email", "type": "string"}]}, "identityNs"),
        ({"fields": []}, "fields"),
        ({"sourceSpec": {"path": "s3://b/my file.csv", "type": "file", "cloudType": "DLZ"}}, "sourceSpec.path"),
        ({"sourceSpec": {"path": "x", "type": "blob", "cloudType": "DLZ"}}, "sourceSpec.type"),
        ({"sourceSpec": {"path": "x", "type": "file", "cloudType": "FTP"}}, "sourceSpec.cloudType"),
        ({"sourceSpec": {"path": "x", "type": "file", "cloudType": "GCS"}}, "sourceSpec.baseConnectionId"),
        ({"sourceSpec": None}, "sourceSpec"),
    ],
)
def test_invalid_audiences_are_bad_requests(emulator: httpx.Client, headers: dict, overrides: dict, words: str) -> None:
    assert_ais_error(emulator.post(CREATE, json=audience_body(**overrides), headers=headers), "100910-400", words)


def test_a_default_ttl_and_a_dlz_source_need_no_connection(emulator: httpx.Client, headers: dict) -> None:
    source = {"path": "dlz/folder", "type": "folder", "cloudType": "DLZ"}

    answer = emulator.post(CREATE, json=audience_body(ttlInDays=None, sourceSpec=source), headers=headers)

    assert answer.status_code == 202, answer.text
    assert answer.json()["operationDetails"]["ttlInDays"] == 30


def test_the_same_audience_twice_is_a_duplicate(emulator: httpx.Client, headers: dict) -> None:
    assert emulator.post(CREATE, json=audience_body(), headers=headers).status_code == 202

    same_name = emulator.post(
        CREATE, json=audience_body(name="SAMPLE external audience", customAudienceId="other"), headers=headers
    )
    same_custom_id = emulator.post(CREATE, json=audience_body(name="Another"), headers=headers)

    assert_ais_error(same_name, "100950-409")
    assert_ais_error(same_custom_id, "100950-409")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"x-sandbox-name": None}, "100920-401"),
        ({"x-gw-ims-org-id": None}, "100920-401"),
        ({"x-gw-ims-org-id": "OTHER@AdobeOrg"}, "100921-401"),
    ],
    ids=["no-sandbox", "no-org", "other-org"],
)
def test_headers_the_service_needs(emulator: httpx.Client, headers: dict, change: dict, code: str) -> None:
    sent = {k: v for k, v in {**headers, **change}.items() if v is not None}

    assert_ais_error(emulator.post(CREATE, json=audience_body(), headers=sent), code)


def test_the_gateway_checks_credentials_first(emulator: httpx.Client, headers: dict) -> None:
    response = emulator.post(CREATE, json=audience_body(), headers={**headers, "Authorization": "Bearer gone"})

    assert response.status_code == 401
    assert response.json() == {"error_code": "401013", "message": "Oauth token is not valid"}


def test_a_patch_replaces_only_what_it_names(emulator: httpx.Client, headers: dict) -> None:
    audience_id = created(emulator, headers)
    path = f"{BASE}/external-audience/{audience_id}"

    patched = ok(
        emulator.patch(
            path,
            json={
                "description": "new",
                "labels": ["core/C2"],
                "ttlInDays": 90,
                "fields": [{"name": "birthday", "labels": ["C5"]}],
            },
            headers=headers,
        )
    )

    assert (patched["description"], patched["labels"], patched["ttlInDays"]) == ("new", ["core/C2"], 90)
    assert patched["fields"] == [
        {"name": "email", "type": "string", "identityNs": "email", "labels": ["C1"]},
        {"name": "birthday", "type": "date", "labels": ["C5"]},
    ]
    assert patched["audienceName"] == "Sample external audience"
    assert_ais_error(emulator.patch(path, json={"ttlInDays": 0}, headers=headers), "100910-400", "ttlInDays")
    assert_ais_error(emulator.patch(path, json={"name": "renamed"}, headers=headers), "100910-400", "name")
    assert_ais_error(
        emulator.patch(path, json={"fields": [{"name": "phone", "labels": []}]}, headers=headers), "100960-422"
    )


def test_ingestion_runs_one_at_a_time(emulator: httpx.Client, headers: dict) -> None:
    audience_id = created(emulator, headers)
    runs = f"{BASE}/external-audience/{audience_id}/runs"

    started = ok(
        emulator.post(runs, json={"dataFilterStartTime": 764245635, "dataFilterEndTime": 3456788568}, headers=headers)
    )
    busy = emulator.post(runs, json={"dataFilterStartTime": 1}, headers=headers)
    running = ok(emulator.get(f"{runs}/{started['runId']}", headers=headers))
    advance(emulator, 10)
    finished = ok(emulator.get(f"{runs}/{started['runId']}", headers=headers))
    second = ok(
        emulator.post(
            f"{BASE}/external-audience/{audience_id}/run",
            json={"dataFilterStartTime": 2, "differentialIngestion": False},
            headers=headers,
        )
    )
    listed = ok(emulator.get(runs, headers=headers))

    assert started["audienceId"] == audience_id and started["differentialIngestion"] is True and "status" not in started
    assert_ais_error(busy, "100960-422", started["runId"])
    assert running["status"] == "PROCESSING"
    assert finished["status"] == "SUCCESS"
    assert [d["stage"] for d in finished["details"]] == ["DATASET_INGEST", "PROFILE_STORE_INGEST"]
    assert [r["runId"] for r in listed["runs"]] == [second["runId"], started["runId"]]
    assert [r["status"] for r in listed["runs"]] == ["PROCESSING", "SUCCESS"]
    assert "details" not in listed["runs"][0]
    assert_ais_error(emulator.get(f"{runs}/nope", headers=headers), "100940-404")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"dataFilterStartTime": "yesterday"},
        {"dataFilterStartTime": 10, "dataFilterEndTime": 5},
        {"dataFilterStartTime": 1, "differentialIngestion": "no"},
    ],
)
def test_invalid_runs_are_bad_requests(emulator: httpx.Client, headers: dict, body: dict) -> None:
    audience_id = created(emulator, headers)

    assert_ais_error(
        emulator.post(f"{BASE}/external-audience/{audience_id}/runs", json=body, headers=headers), "100910-400"
    )


def test_a_deleted_audience_is_gone_and_its_name_free(emulator: httpx.Client, headers: dict) -> None:
    audience_id = created(emulator, headers)

    deleted = emulator.delete(f"{BASE}/external-audience/{audience_id}/", headers=headers)

    assert deleted.status_code == 204 and deleted.content == b""
    assert_ais_error(emulator.get(f"{BASE}/external-audience/{audience_id}", headers=headers), "100940-404")
    assert_ais_error(emulator.delete(f"{BASE}/external-audience/{audience_id}", headers=headers), "100940-404")
    assert emulator.post(CREATE, json=audience_body(), headers=headers).status_code == 202
    assert_ais_error(emulator.get(f"{BASE}/external-audiences/operations/unknown", headers=headers), "100940-404")
