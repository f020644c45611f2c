"""Experience Platform: the gateway's checks, ad-hoc activation (v2, beta and older flows, with its
guardrails), flow runs, segment jobs and export jobs progressing on the emulator's clock."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from proxy.emulator import aep
from tests.emulator.support import (
    V2_ACCEPT,
    access_token,
    advance,
    assert_problem,
    ok,
    platform_headers,
)

ADHOC = "/data/core/activation/disflowprovider/adhocrun"
SEGMENT_JOBS = "/data/core/ups/segment/jobs"
EXPORT_JOBS = "/data/core/ups/export/jobs"
RUNS = "https://platform.adobe.io"


@pytest.fixture
def headers(emulator: httpx.Client) -> dict[str, str]:
    return platform_headers(emulator)


@pytest.fixture
def v2(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Accept": V2_ACCEPT}


def activate(client: httpx.Client, headers: dict[str, str], info: dict[str, list[str]], **body: Any) -> httpx.Response:
    return client.post(ADHOC, json={"activationInfo": info, **body}, headers=headers)


def run_status(client: httpx.Client, headers: dict[str, str], status_url: str) -> str:
    (item,) = ok(client.get(status_url.removeprefix(RUNS), headers=headers))["items"]
    return item["status"]["value"]


def export_body(*segments: str, **extra: Any) -> dict[str, Any]:
    return {
        "fields": "identities.id,personalEmail.address",
        "filter": {"segments": [{"segmentId": s, "status": ["realized"]} for s in segments]},
        "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": False},
        "schema": {"name": "_xdm.context.profile"},
        **extra,
    }


# --- the gateway's checks -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ADHOC, SEGMENT_JOBS, EXPORT_JOBS])
@pytest.mark.parametrize(
    ("change", "status", "body"),
    [
        ({"Authorization": None}, 401, {"error_code": "403010", "message": "Oauth token is missing."}),
        ({"Authorization": "Bearer stale"}, 401, {"error_code": "401013", "message": "Oauth token is not valid"}),
        ({"x-api-key": None}, 403, {"error_code": "403000", "message": "Api Key is required"}),
        ({"x-api-key": "other"}, 403, {"error_code": "403003", "message": "Api Key is invalid"}),
        ({"x-gw-ims-org-id": None}, 400, {"error_code": "400003", "message": "Missing header"}),
        ({"x-gw-ims-org-id": "OTHER@AdobeOrg"}, 403, {"error_code": "403025", "message": "Profile is not valid"}),
    ],
    ids=["no-token", "bad-token", "no-key", "bad-key", "no-org", "other-org"],
)
def test_calls_without_the_right_headers_are_refused(
    emulator: httpx.Client, headers: dict, path: str, change: dict, status: int, body: dict
) -> None:
    sent = {k: v for k, v in {**headers, **change}.items() if v is not None}

    response = emulator.post(path, json={}, headers=sent)

    assert response.status_code == status
    assert response.json() == body


def test_a_body_needs_a_json_content_type(emulator: httpx.Client, headers: dict) -> None:
    response = emulator.post(ADHOC, content=b"activationInfo=x", headers={**headers, "Content-Type": "text/plain"})

    assert response.json() == {
        "type": "/placeholder/type/uri",
        "status": 400,
        "title": "BadRequestError",
        "detail": "A valid content-type must be specified",
    }


def test_the_credentials_that_arrived_are_recorded(emulator: httpx.Client, headers: dict) -> None:
    ok(emulator.get(SEGMENT_JOBS, headers=headers))

    recorded = ok(emulator.get("/_emulator/last-request", params={"route": "ups"}))["headers"]

    assert recorded["authorization"] == headers["Authorization"]
    assert recorded["x-gw-ims-org-id"] == "EMULATOR@AdobeOrg" and recorded["x-sandbox-name"] == "prod"


# --- ad-hoc activation -------------------------------------------------------------------------------------


def test_a_v2_job_starts_one_run_per_audience_that_finishes_on_the_clock(emulator: httpx.Client, v2: dict) -> None:
    answer = ok(activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS, aep.US_WORKERS]}, exportIds=["x"]))

    orders = answer["order"]
    assert [o["segment"] for o in orders] == [aep.GOLD_MEMBERS, aep.US_WORKERS]
    assert {o["order"] for o in orders} == {aep.SFTP_DATAFLOW}
    assert all(o["statusURL"].startswith(f"{RUNS}/data/foundation/flowservice/runs/") for o in orders)
    assert run_status(emulator, v2, orders[0]["statusURL"]) == "inProgress"
    advance(emulator, 30)
    assert run_status(emulator, v2, orders[0]["statusURL"]) == "success"


def test_one_concurrent_job_per_audience(emulator: httpx.Client, v2: dict) -> None:
    (first,) = ok(activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS]}))["order"]
    run_id = first["statusURL"].rsplit("/", 1)[1]

    again = activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.CART_ABANDONERS, aep.GOLD_MEMBERS]})
    other = activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.CART_ABANDONERS]})
    ok(emulator.post("/_emulator/aep", json={"finish": [run_id]}))
    after = activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS]})

    assert_problem(
        again,
        409,
        f"Run already going on for audience {aep.GOLD_MEMBERS} for order {aep.SFTP_DATAFLOW} with run id {run_id}",
    )
    assert other.status_code == 200, "a refused job starts nothing"
    assert after.status_code == 200


def test_at_most_eighty_audiences_per_v2_job(emulator: httpx.Client, v2: dict) -> None:
    many = [f"generated-{n:03}" for n in range(81)]
    ok(
        emulator.post(
            "/_emulator/aep",
            json={
                "audiences": [{"id": a, "name": a} for a in many],
                "dataflows": [{"id": "bulk-flow", "destinationId": aep.SFTP_DESTINATION, "audienceIds": many}],
            },
        )
    )

    refused = activate(emulator, v2, {aep.SFTP_DESTINATION: many})
    eighty = activate(emulator, v2, {aep.SFTP_DESTINATION: many[:80]})

    assert_problem(refused, 400, "at most 80 audiences; this one has 81")
    assert eighty.status_code == 200 and len(eighty.json()["order"]) == 80


def test_an_audience_may_go_to_two_destinations_in_one_job(emulator: httpx.Client, v2: dict) -> None:
    ok(
        emulator.post(
            "/_emulator/aep",
            json={
                "destinations": [{"id": "s3-dest", "name": "Second export"}],
                "dataflows": [{"id": "s3-flow", "destinationId": "s3-dest", "audienceIds": [aep.GOLD_MEMBERS]}],
            },
        )
    )

    orders = ok(activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS], "s3-dest": [aep.GOLD_MEMBERS]}))[
        "order"
    ]

    assert [o["order"] for o in orders] == [aep.SFTP_DATAFLOW, "s3-flow"]


@pytest.mark.parametrize(
    ("info", "status", "detail"),
    [
        (
            {aep.SFTP_DESTINATION: [aep.NOT_ACTIVATED, "unknown-audience"]},
            400,
            "Segments Not activated anywhere, unknown-audience are not part of this dataflow or out of schedule range!",
        ),
        ({aep.STREAMING_DESTINATION: [aep.GOLD_MEMBERS]}, 400, "is not a batch file-based destination"),
        ({"no-such-destination": [aep.GOLD_MEMBERS]}, 400, "Destination no-such-destination does not exist"),
        ({}, 400, "activationInfo"),
        ({aep.SFTP_DESTINATION: []}, 400, "non-empty array"),
    ],
    ids=["not-in-dataflow", "streaming", "unknown-destination", "empty", "no-audiences"],
)
def test_jobs_outside_a_dataflow_are_refused(
    emulator: httpx.Client, v2: dict, info: dict, status: int, detail: str
) -> None:
    assert_problem(activate(emulator, v2, info), status, detail)
    assert ok(emulator.get("/_emulator/aep"))["adhocRuns"] == []


def test_an_audience_within_an_hour_of_its_first_scheduled_activation_is_out_of_range(
    emulator: httpx.Client, v2: dict
) -> None:
    now = ok(emulator.get("/_emulator/clock"))["now"]
    ok(emulator.post("/_emulator/aep", json={"dataflows": [{"id": aep.SFTP_DATAFLOW, "scheduledAt": now}]}))

    early = activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS]})
    advance(emulator, 3600)

    assert_problem(early, 400, "Segments Gold members are not part of this dataflow or out of schedule range!")
    assert activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS]}).status_code == 200


def test_no_job_while_a_scheduled_export_runs(emulator: httpx.Client, v2: dict, headers: dict) -> None:
    ok(emulator.post("/_emulator/aep", json={"dataflows": [{"id": aep.SFTP_DATAFLOW, "processing": True}]}))
    processing = activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS]})
    ok(emulator.post("/_emulator/aep", json={"dataflows": [{"id": aep.SFTP_DATAFLOW, "processing": False}]}))
    export = ok(emulator.post(EXPORT_JOBS, json=export_body(aep.US_WORKERS), headers=headers))

    exporting = activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.US_WORKERS]})
    unrelated = activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS]})
    advance(emulator, 10)

    assert_problem(processing, 409, f"dataflow {aep.SFTP_DATAFLOW}")
    assert_problem(exporting, 409, f"export job {export['id']}")
    assert unrelated.status_code == 200
    assert activate(emulator, v2, {aep.SFTP_DESTINATION: [aep.US_WORKERS]}).status_code == 200


def test_the_beta_flow_needs_a_known_export_id_and_twenty_segments_at_most(
    emulator: httpx.Client, headers: dict
) -> None:
    twenty_one = [f"beta-{n}" for n in range(21)]
    ok(
        emulator.post(
            "/_emulator/aep",
            json={"dataflows": [{"id": "beta-flow", "destinationId": aep.SFTP_DESTINATION, "audienceIds": twenty_one}]},
        )
    )
    latest = ok(emulator.get(EXPORT_JOBS, headers=headers))["records"][0]
    assert latest["schema"] == {"name": "_xdm.context.profile"}

    missing = activate(emulator, headers, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS]})
    unknown = activate(emulator, headers, {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS]}, exportIds=["999"])
    too_many = activate(emulator, headers, {aep.SFTP_DESTINATION: twenty_one}, exportIds=[str(latest["id"])])
    twenty = activate(emulator, headers, {aep.SFTP_DESTINATION: twenty_one[:20]}, exportIds=[str(latest["id"])])

    assert_problem(missing, 400, "export job id is required")
    assert_problem(unknown, 400, "export job 999 does not exist")
    assert_problem(too_many, 400, "at most 20 segments")
    assert twenty.status_code == 200


def test_the_older_flow_runs_twenty_jobs_a_day(emulator: httpx.Client, headers: dict) -> None:
    ok(emulator.post("/_emulator/aep", json={"timings": {"adhoc_run_s": 0}}))
    info = {aep.SFTP_DESTINATION: [aep.GOLD_MEMBERS]}

    statuses = [activate(emulator, headers, info, exportId=[12345]).status_code for _ in range(21)]
    advance(emulator, 24 * 3600)

    assert statuses == [200] * 20 + [429]
    assert activate(emulator, headers, info, exportId=[12345]).status_code == 401, "a day outlives the token"
    assert activate(emulator, platform_headers(emulator), info, exportId=[12345]).status_code == 200


# --- segment jobs --------------------------------------------------------------------------------------------


def test_a_segment_job_goes_from_new_to_succeeded(emulator: httpx.Client, headers: dict) -> None:
    job = ok(emulator.post(SEGMENT_JOBS, json=[{"segmentId": aep.US_WORKERS}], headers=headers))

    assert job["status"] == "NEW" and job["imsOrgId"] == "EMULATOR@AdobeOrg"
    assert job["segments"][0]["segment"]["expression"] == {
        "type": "PQL",
        "format": "pql/text",
        "value": 'workAddress.country = "US"',
    }
    assert job["_links"]["cancel"] == {"href": f"/segment/jobs/{job['id']}", "method": "DELETE"}
    advance(emulator, 1)
    assert ok(emulator.get(f"{SEGMENT_JOBS}/{job['id']}", headers=headers))["status"] == "PROCESSING"
    advance(emulator, 9)
    finished = ok(emulator.get(f"{SEGMENT_JOBS}/{job['id']}", headers=headers))
    assert finished["status"] == "SUCCEEDED" and "metrics" in finished


def test_segment_jobs_are_listed_filtered_and_cancelled(emulator: httpx.Client, headers: dict) -> None:
    first = ok(emulator.post(SEGMENT_JOBS, json=[{"segmentId": aep.US_WORKERS}], headers=headers))
    advance(emulator, 1)
    second = ok(emulator.post(SEGMENT_JOBS, json=[{"segmentId": aep.GOLD_MEMBERS}], headers=headers))

    listed = ok(emulator.get(SEGMENT_JOBS, headers=headers))
    new = ok(emulator.get(SEGMENT_JOBS, params={"status": "NEW"}, headers=headers))
    gold = ok(
        emulator.get(SEGMENT_JOBS, params={"property": f"segments~segmentId=={aep.GOLD_MEMBERS}"}, headers=headers)
    )
    cancelled = ok(emulator.delete(f"{SEGMENT_JOBS}/{first['id']}", headers=headers))
    ok(emulator.post("/_emulator/aep", json={"finish": [second["id"]]}))

    assert [j["id"] for j in listed["children"]] == [second["id"], first["id"]]
    assert listed["_page"] == {"totalCount": 2, "pageSize": 2}
    assert [j["id"] for j in new["children"]] == [second["id"]]
    assert [j["id"] for j in gold["children"]] == [second["id"]]
    assert cancelled == {
        "status": True,
        "message": f"Segment job with id '{first['id']}' has been marked for cancelling",
    }
    assert ok(emulator.get(f"{SEGMENT_JOBS}/{first['id']}", headers=headers))["status"] == "CANCELLED"
    assert_problem(emulator.delete(f"{SEGMENT_JOBS}/{second['id']}", headers=headers), 400, "SUCCEEDED")
    assert_problem(emulator.get(f"{SEGMENT_JOBS}/nope", headers=headers), 404)


@pytest.mark.parametrize(
    "body",
    [[], {"segmentId": aep.US_WORKERS}, [{"segmentId": "unknown"}], [{}]],
    ids=["empty", "object", "unknown", "no-id"],
)
def test_invalid_segment_jobs_are_refused(emulator: httpx.Client, headers: dict, body: Any) -> None:
    assert_problem(emulator.post(SEGMENT_JOBS, json=body, headers=headers), 400)


# --- export jobs ---------------------------------------------------------------------------------------------


def test_export_jobs_are_created_listed_newest_first_and_cancelled(emulator: httpx.Client, headers: dict) -> None:
    created = ok(emulator.post(EXPORT_JOBS, json=export_body(aep.US_WORKERS), headers=headers))
    per_batch = ok(
        emulator.post(
            EXPORT_JOBS,
            json=export_body(aep.GOLD_MEMBERS, destination={"datasetId": "d", "segmentPerBatch": True}),
            headers=headers,
        )
    )

    listed = ok(emulator.get(EXPORT_JOBS, headers=headers))
    succeeded = ok(emulator.get(EXPORT_JOBS, params={"status": "SUCCEEDED"}, headers=headers))
    cancelled = ok(emulator.delete(f"{EXPORT_JOBS}/{created['id']}", headers=headers))

    assert created["id"] == 12346 and created["status"] == "NEW" and created["jobType"] == "BATCH"
    assert created["destination"]["batchId"] and created["filter"]["segments"][0]["segmentId"] == aep.US_WORKERS
    assert [b["segmentId"] for b in per_batch["destination"]["batches"]] == [aep.GOLD_MEMBERS]
    assert [r["id"] for r in listed["records"]] == [12347, 12346, 12345]
    assert listed["page"] == {"sortField": "createdTime", "sort": "desc", "pageOffset": 0, "pageSize": 3}
    assert [r["id"] for r in succeeded["records"]] == [12345]
    assert cancelled == {"status": True, "message": "Export job has been marked for cancelling"}
    assert ok(emulator.get(f"{EXPORT_JOBS}/{created['id']}", headers=headers))["status"] == "CANCELLED"
    ok(emulator.post("/_emulator/aep", json={"finish": True}))
    assert ok(emulator.get(f"{EXPORT_JOBS}/12347", headers=headers))["status"] == "SUCCEEDED"
    assert_problem(emulator.get(f"{EXPORT_JOBS}/99", headers=headers), 404)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"destination": None}, "destination: is required"),
        ({"destination": {"segmentPerBatch": True}}, "destination.datasetId"),
        ({"schema": None}, "schema: is required"),
        ({"schema": {}}, "schema.name"),
        ({"filter": {"segments": [{"segmentId": "s", "status": ["gone"]}]}}, "filter.segments[0].status"),
        ({"filter": {"segments": [{"status": ["realized"]}]}}, "filter.segments[0].segmentId"),
        ({"filter": {"fromIngestTimestamp": "last week"}}, "filter.fromIngestTimestamp"),
        ({"filter": {"emptyProfiles": "yes"}}, "filter.emptyProfiles"),
    ],
)
def test_invalid_export_jobs_are_refused(emulator: httpx.Client, headers: dict, change: dict, words: str) -> None:
    body = {k: v for k, v in {**export_body(), **change}.items() if v is not None}

    assert_problem(emulator.post(EXPORT_JOBS, json=body, headers=headers), 400, words)


# --- the control endpoint ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"timings": {"adhoc_run_s": -1}},
        {"timings": {"sleep": 1}},
        {"dataflows": [{"id": "f", "destinationId": "nowhere", "audienceIds": []}]},
        {"destinations": [{"id": "d", "name": "x", "type": "email"}]},
        {"audiences": [{"name": "no id"}]},
        {"audiences": [{"id": "a", "name": 7}]},
        {"dataflows": [{"id": aep.SFTP_DATAFLOW, "scheduledAt": "now"}]},
        {"finish": "soon"},
        {"weather": "fine"},
    ],
)
def test_bad_control_input_is_refused(emulator: httpx.Client, body: dict) -> None:
    response = emulator.post("/_emulator/aep", json=body)

    assert response.status_code == 400
    assert set(response.json()) == {"status", "message", "field"}


def test_tokens_from_ims_open_every_api_and_the_world_is_listed(emulator: httpx.Client) -> None:
    world = ok(emulator.get("/_emulator/aep"))

    assert {d["id"] for d in world["destinations"]} == {aep.SFTP_DESTINATION, aep.STREAMING_DESTINATION}
    assert world["timings"]["adhoc_run_s"] == 30
    assert access_token(emulator) != access_token(emulator)
