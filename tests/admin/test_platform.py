"""Experience Platform through the gateway: segment jobs, export jobs, external audiences and flow runs
passed through with the gateway's credentials, and ad-hoc activation's guardrails checked by the gateway
before a job is sent (at most 80 audiences, one job per audience at a time, none while a scheduled export
of the audience runs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from proxy.emulator import aep
from tests.admin.support import (
    ADHOC,
    AS_ACTIVATION,
    AS_ADMIN,
    AS_PROFILE,
    CLIENT_ID,
    EXPORT_JOBS,
    EXTERNAL,
    ORG_ID,
    SANDBOX,
    SEGMENT_JOBS,
    V2_ACCEPT,
    activation_info,
    advance,
    assert_error,
    calls,
    configure_aep,
    export_body,
    last_request,
    ok,
    raw_get,
    send_concurrently,
)
from tests.gateways import OwnGateway, own_gateway

V2 = {**AS_ACTIVATION, "Accept": V2_ACCEPT}


def activate(gw: OwnGateway, *audiences: str, headers: dict[str, str] = V2, **body: Any) -> httpx.Response:
    return gw.client.post(ADHOC, json={**activation_info(*audiences), **body}, headers=headers)


def run_path(order: dict[str, Any]) -> str:
    """The gateway path of an order's status link (upstream names platform.adobe.io; the gateway itself)."""
    parts = urlsplit(str(order["statusURL"]))
    assert parts.hostname == "127.0.0.1", order["statusURL"]
    assert parts.path.startswith("/data/foundation/flowservice/runs/")
    return parts.path


def jobs_started(emulator: httpx.Client) -> int:
    return calls(emulator).get("activation", 0)


# --- passthrough -----------------------------------------------------------------------------------------------


def test_upstream_gets_the_gateways_platform_credentials_and_the_clients_sandbox(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    ok(admin_gateway.client.get(SEGMENT_JOBS, headers=AS_ACTIVATION))
    received = last_request(emulator, "ups")["headers"]
    assert received["host"] == "platform.adobe.io"
    assert (received["x-api-key"], received["x-gw-ims-org-id"], received["x-sandbox-name"]) == (
        CLIENT_ID,
        ORG_ID,
        SANDBOX,
    ), "a call that names no sandbox goes to the gateway's"
    assert received["authorization"] != AS_ACTIVATION["Authorization"]

    named = {**AS_ACTIVATION, "x-sandbox-name": "dev-1", "x-sandbox-id": "5f7e-aa10"}
    ok(admin_gateway.client.get(SEGMENT_JOBS, headers=named))
    received = last_request(emulator, "ups")["headers"]
    assert (received["x-sandbox-name"], received["x-sandbox-id"]) == ("dev-1", "5f7e-aa10"), "the client's"
    assert received["x-gw-ims-org-id"] == ORG_ID


def test_a_sandbox_outside_the_allowlist_is_refused_with_platforms_error_fields(
    admin_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(admin_settings, sandbox_allowlist=["prod", "dev-1"]) as gw:
        refused = gw.client.get(SEGMENT_JOBS, headers={**AS_ACTIVATION, "x-sandbox-name": "other"})
        bad = gw.client.get(SEGMENT_JOBS, headers={**AS_ACTIVATION, "x-sandbox-name": "a b"})
        allowed = gw.client.get(SEGMENT_JOBS, headers={**AS_ACTIVATION, "x-sandbox-name": "dev-1"})
    assert refused.status_code == 403 and allowed.status_code == 200
    assert refused.json() == {
        "status": 403,
        "message": "x-sandbox-name: sandbox 'other' is not one this gateway lets clients use",
        "field": "x-sandbox-name",
        "type": "about:blank",
        "title": "Forbidden",
        "detail": "x-sandbox-name: sandbox 'other' is not one this gateway lets clients use",
    }
    assert bad.status_code == 400 and bad.json()["field"] == "x-sandbox-name" and bad.json()["title"] == "Bad Request"
    assert calls(emulator)["ups"] == 1, "only the allowed call went upstream"


def test_the_gateways_own_refusals_on_platform_paths_carry_platforms_error_fields(
    admin_gateway: OwnGateway,
) -> None:
    unknown = admin_gateway.client.get("/data/core/nothing", headers=AS_ACTIVATION)
    unauthenticated = admin_gateway.client.get(SEGMENT_JOBS)
    for answer, status, title in ((unknown, 404, "Not Found"), (unauthenticated, 401, "Unauthorized")):
        body = answer.json()
        assert answer.status_code == status and body["status"] == status
        assert (body["type"], body["title"], body["detail"]) == ("about:blank", title, body["message"])


def test_segment_jobs_are_created_read_listed_and_cancelled(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    gw = admin_gateway.client
    job = ok(gw.post(SEGMENT_JOBS, json=[{"segmentId": aep.US_WORKERS}], headers=AS_ACTIVATION))

    read = ok(gw.get(f"{SEGMENT_JOBS}/{job['id']}", headers=AS_ACTIVATION))
    listed = ok(gw.get(SEGMENT_JOBS, params={"status": "NEW"}, headers=AS_ACTIVATION))
    cancelled = ok(gw.delete(f"{SEGMENT_JOBS}/{job['id']}", headers=AS_ACTIVATION))

    assert read["status"] == "NEW" and read["imsOrgId"] == ORG_ID
    assert [j["id"] for j in listed["children"]] == [job["id"]]
    assert last_request(emulator, "ups")["method"] == "DELETE"
    assert cancelled["status"] is True
    assert ok(gw.get(f"{SEGMENT_JOBS}/{job['id']}", headers=AS_ACTIVATION))["status"] == "CANCELLED"
    missing = gw.post(SEGMENT_JOBS, json=[{"segmentId": "unknown"}], headers=AS_ACTIVATION)
    assert missing.status_code == 400 and missing.json()["title"] == "BadRequestError", "upstream's problem body"


def test_export_jobs_are_created_read_listed_and_cancelled(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    gw = admin_gateway.client
    job = ok(gw.post(EXPORT_JOBS, json=export_body(aep.GOLD_MEMBERS), headers=AS_ACTIVATION))

    listed = ok(gw.get(EXPORT_JOBS, params={"limit": "5"}, headers=AS_ACTIVATION))
    advance(emulator, 1)
    read = ok(gw.get(f"{EXPORT_JOBS}/{job['id']}", headers=AS_ACTIVATION))
    cancelled = ok(gw.delete(f"{EXPORT_JOBS}/{job['id']}", headers=AS_ACTIVATION))

    assert job["status"] == "NEW" and read["status"] == "PROCESSING"
    assert [r["id"] for r in listed["records"]] == [job["id"], 12345]
    assert cancelled == {"status": True, "message": "Export job has been marked for cancelling"}


def test_an_external_audience_is_created_patched_ingested_and_deleted(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    gw = admin_gateway.client
    body = {
        "name": "Gateway audience",
        "customAudienceId": "crm-gw-1",
        "fields": [{"name": "email", "type": "string", "identityNs": "email"}],
        "sourceSpec": {"path": "dlz/gateway", "type": "folder", "cloudType": "DLZ"},
        "audienceType": "people",
        "originName": "CUSTOM_UPLOAD",
    }
    created = gw.post(f"{EXTERNAL}/external-audience/", json=body, headers=AS_ACTIVATION)
    assert created.status_code == 202, created.text
    operation = f"{EXTERNAL}/external-audiences/operations/{created.json()['operationId']}"
    advance(emulator, 2)
    audience_id = ok(gw.get(operation, headers=AS_ACTIVATION))["audienceId"]
    one = f"{EXTERNAL}/external-audience/{audience_id}"

    patched = ok(gw.patch(one, json={"description": "patched"}, headers=AS_ACTIVATION))
    run = ok(gw.post(f"{one}/runs", json={"dataFilterStartTime": 1}, headers=AS_ACTIVATION))
    run_read = ok(gw.get(f"{one}/runs/{run['runId']}", headers=AS_ACTIVATION))
    runs = ok(gw.get(f"{one}/runs", headers=AS_ACTIVATION))
    deleted = gw.delete(one, headers=AS_ACTIVATION)

    assert patched["description"] == "patched"
    assert run_read["status"] == "PROCESSING" and [r["runId"] for r in runs["runs"]] == [run["runId"]]
    assert deleted.status_code == 204 and deleted.content == b""
    assert gw.get(one, headers=AS_ACTIVATION).status_code == 404
    assert last_request(emulator, "external_audiences")["headers"]["x-sandbox-name"] == SANDBOX


# --- keys and paths --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer unknown-key-000000000000"}, 401), (AS_ADMIN, 403), (AS_PROFILE, 403)],
    ids=["no-key", "unknown-key", "admin-scope", "profile-scope"],
)
@pytest.mark.parametrize("path", [ADHOC, SEGMENT_JOBS, f"{EXTERNAL}/external-audience/"])
def test_a_client_without_the_activation_scope_is_refused_before_any_upstream_call(
    shared_admin_gateway: OwnGateway, emulator: httpx.Client, path: str, headers: dict[str, str], status: int
) -> None:
    response = shared_admin_gateway.client.post(path, json=activation_info(aep.GOLD_MEMBERS), headers=headers)

    assert_error(response, status)
    assert calls(emulator) == {}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/data/core/ups/audiences", 404),
        ("GET", "/data/foundation/flowservice/connections", 404),
        ("GET", "/data/foundation/catalog/dataSets", 404),
        ("GET", f"{SEGMENT_JOBS}/job-1/extra", 404),
        ("GET", f"{SEGMENT_JOBS}/job%201", 404),
        ("POST", "/data/core/activation/disflowprovider/adhocrun/extra", 404),
        ("GET", "/data/core/ups/segment/jobs/..", 400),
        ("GET", "/data/core/ups/%2e%2e/ais/external-audience", 400),
        ("GET", "/data/core/ups%2Fsegment/jobs", 400),
    ],
)
def test_platform_paths_outside_the_allowlist_are_refused(
    shared_admin_gateway: OwnGateway, emulator: httpx.Client, method: str, path: str, status: int
) -> None:
    if method == "GET":
        answered, body = raw_get(shared_admin_gateway.url, path, AS_ACTIVATION)
    else:
        response = shared_admin_gateway.client.post(path, json=activation_info(aep.GOLD_MEMBERS), headers=V2)
        answered, body = response.status_code, response.json()

    assert (answered, body["status"]) == (status, status), body
    assert calls(emulator) == {}


# --- ad-hoc activation -------------------------------------------------------------------------------------------


def test_an_activation_job_starts_runs_whose_status_is_read_through_the_gateway(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    orders = ok(activate(admin_gateway, aep.GOLD_MEMBERS, aep.US_WORKERS))["order"]

    assert [o["segment"] for o in orders] == [aep.GOLD_MEMBERS, aep.US_WORKERS]
    status = ok(admin_gateway.client.get(run_path(orders[0]), headers=AS_ACTIVATION))
    assert status["items"][0]["status"]["value"] == "inProgress"
    advance(emulator, 30)
    status = ok(admin_gateway.client.get(run_path(orders[0]), headers=AS_ACTIVATION))
    assert status["items"][0]["status"]["value"] == "success"
    assert last_request(emulator, "activation")["headers"]["accept"] == V2_ACCEPT


def test_eighty_audiences_per_job_and_not_one_more(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    many = [f"gateway-audience-{n:03}" for n in range(81)]
    configure_aep(
        emulator,
        audiences=[{"id": a, "name": a} for a in many],
        dataflows=[{"id": "gateway-flow", "destinationId": aep.SFTP_DESTINATION, "audienceIds": many}],
    )

    refused = activate(admin_gateway, *many)
    eighty = activate(admin_gateway, *many[:80])

    assert_error(refused, 400, "an ad-hoc activation job takes 1 to 80 audiences, not 81")
    assert len(ok(eighty)["order"]) == 80
    assert jobs_started(emulator) == 1, "the refused job never reached the platform"


def test_the_beta_flow_takes_twenty_audiences_per_job(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    twenty_one = [f"beta-audience-{n:02}" for n in range(21)]
    configure_aep(
        emulator,
        dataflows=[{"id": "beta-flow", "destinationId": aep.SFTP_DESTINATION, "audienceIds": twenty_one}],
    )

    refused = activate(admin_gateway, *twenty_one, headers=AS_ACTIVATION, exportIds=["12345"])
    twenty = activate(admin_gateway, *twenty_one[:20], headers=AS_ACTIVATION, exportIds=["12345"])

    assert_error(refused, 400, "takes 1 to 20 audiences, not 21")
    assert twenty.status_code == 200, twenty.text
    assert jobs_started(emulator) == 1


def test_the_older_flows_single_export_id_takes_any_number_of_audiences(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    thirty = [f"old-flow-audience-{n:02}" for n in range(30)]
    configure_aep(
        emulator, dataflows=[{"id": "old-flow", "destinationId": aep.SFTP_DESTINATION, "audienceIds": thirty}]
    )
    started = activate(admin_gateway, *thirty, headers=AS_ACTIVATION, exportId=["12345"])
    assert started.status_code == 200, started.text
    assert len(started.json()["order"]) == 30


@pytest.mark.parametrize(
    "body",
    [{}, {"activationInfo": []}, {"activationInfo": {}}, {"activationInfo": {aep.SFTP_DESTINATION: "x"}}],
    ids=["no-info", "list", "empty", "not-a-list"],
)
def test_a_malformed_job_is_refused_by_the_gateway(
    admin_gateway: OwnGateway, emulator: httpx.Client, body: dict[str, Any]
) -> None:
    assert_error(admin_gateway.client.post(ADHOC, json=body, headers=V2), 400, "activationInfo")
    assert_error(admin_gateway.client.post(ADHOC, content=b"{", headers=V2), 400, "malformed JSON")
    assert jobs_started(emulator) == 0


def test_one_job_per_audience_until_its_run_has_finished(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    (order,) = ok(activate(admin_gateway, aep.GOLD_MEMBERS))["order"]
    run_id = run_path(order).rsplit("/", 1)[1]

    again = activate(admin_gateway, aep.CART_ABANDONERS, aep.GOLD_MEMBERS)
    other = activate(admin_gateway, aep.CART_ABANDONERS)
    configure_aep(emulator, finish=[run_id])
    after = activate(admin_gateway, aep.GOLD_MEMBERS)

    assert_error(
        again,
        409,
        f"Run already going on for audience {aep.GOLD_MEMBERS} for order {aep.SFTP_DATAFLOW} with run id {run_id}",
    )
    assert other.status_code == 200, "a refused job held nothing"
    assert after.status_code == 200, after.text
    assert jobs_started(emulator) == 3, "the refused job never reached the platform"


def test_concurrent_jobs_for_one_audience_start_once(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    ok(emulator.post("/_emulator/faults", json={"latency_ms": 150}))

    answers = send_concurrently(admin_gateway.url, "POST", ADHOC, V2, 6, json=activation_info(aep.GOLD_MEMBERS))

    assert sorted(a.status for a in answers) == [200] + [409] * 5
    assert jobs_started(emulator) == 1


def test_no_job_while_a_scheduled_export_of_the_audience_runs(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    export = ok(admin_gateway.client.post(EXPORT_JOBS, json=export_body(aep.US_WORKERS), headers=AS_ACTIVATION))

    exporting = activate(admin_gateway, aep.US_WORKERS)
    unrelated = activate(admin_gateway, aep.GOLD_MEMBERS)
    advance(emulator, 10)  # the export job succeeds
    after = activate(admin_gateway, aep.US_WORKERS)

    assert_error(
        exporting,
        409,
        f"Audience {aep.US_WORKERS} is being exported by a scheduled export job ({export['id']}); "
        "ad-hoc activation waits until it has finished",
    )
    assert unrelated.status_code == after.status_code == 200
    assert jobs_started(emulator) == 2


def test_the_export_check_holds_after_the_token_was_revoked(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    ok(admin_gateway.client.post(EXPORT_JOBS, json=export_body(aep.US_WORKERS), headers=AS_ACTIVATION))
    ok(emulator.post("/_emulator/ims/revoke"))

    exporting = activate(admin_gateway, aep.US_WORKERS)

    assert_error(exporting, 409, "is being exported by a scheduled export job")
    assert jobs_started(emulator) == 0


def test_a_processing_dataflow_is_refused_by_the_platform_and_the_answer_passed_on(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    configure_aep(emulator, dataflows=[{"id": aep.SFTP_DATAFLOW, "processing": True}])

    refused = activate(admin_gateway, aep.GOLD_MEMBERS)
    configure_aep(emulator, dataflows=[{"id": aep.SFTP_DATAFLOW, "processing": False}])
    after = activate(admin_gateway, aep.GOLD_MEMBERS)

    assert refused.status_code == 409 and refused.json()["title"] == "ConflictError"
    assert after.status_code == 200, "a job upstream refused holds nothing at the gateway"


def test_concurrent_jobs_after_a_finished_run_start_once(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    (order,) = ok(activate(admin_gateway, aep.GOLD_MEMBERS))["order"]
    configure_aep(emulator, finish=[run_path(order).rsplit("/", 1)[1]])
    ok(emulator.post("/_emulator/faults", json={"latency_ms": 150}))  # both ask the old run's status at once

    answers = send_concurrently(admin_gateway.url, "POST", ADHOC, V2, 2, json=activation_info(aep.GOLD_MEMBERS))

    assert sorted(a.status for a in answers) == [200, 409], [a.body for a in answers]
    assert jobs_started(emulator) == 2


DATASETS = {**AS_ACTIVATION, "Accept": "application/vnd.adobe.adhoc.dataset.activation+json; version=1"}


def test_an_ad_hoc_dataset_export_goes_through_and_a_malformed_one_is_refused_by_the_gateway(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    body = {"activationInfo": {"destinations": [{"flowId": aep.SFTP_DATAFLOW, "datasets": [{"id": "ds-1"}]}]}}
    exported = ok(admin_gateway.client.post(ADHOC, json=body, headers=DATASETS))
    (dataset,) = exported["destinations"][0]["datasets"]
    assert urlsplit(dataset["statusURL"]).hostname == "127.0.0.1", "the status link points at the gateway"
    assert ok(admin_gateway.client.get(urlsplit(dataset["statusURL"]).path, headers=AS_ACTIVATION))["items"]

    calls_before = jobs_started(emulator)
    missing = {"activationInfo": {"destinations": [{"flowId": aep.SFTP_DATAFLOW, "datasets": [{}]}]}}
    refused = admin_gateway.client.post(ADHOC, json=missing, headers=DATASETS)
    assert_error(refused, 400, "activationInfo.destinations[0].datasets[0].id")
    assert jobs_started(emulator) == calls_before, "the refused export never reached the platform"
