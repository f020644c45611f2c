"""Target Admin API batch: dependencies, {operationIdResponse:N} references, skips, whole-batch checks,
relative URL forms and the per-operation rate."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.support import TENANT, admin_headers, assert_admin_error, delivery, ok

BATCH = f"/{TENANT}/target/batch"


@pytest.fixture
def headers(emulator: httpx.Client) -> dict[str, str]:
    return admin_headers(emulator)


def op(operation_id: int, method: str, url: str, body: Any = None, **extra: Any) -> dict[str, Any]:
    operation = {"operationId": operation_id, "method": method, "relativeUrl": url, **extra}
    if body is not None:
        operation["body"] = body
    return operation


def run(client: httpx.Client, headers: dict[str, str], *operations: dict[str, Any]) -> dict[int, dict[str, Any]]:
    answer = ok(client.post(BATCH, json={"operations": list(operations)}, headers=headers))
    assert [r["operationId"] for r in answer["results"]] == [o["operationId"] for o in operations]
    return {result["operationId"]: result for result in answer["results"]}


def test_dependent_operations_use_the_ids_created_before_them(emulator: httpx.Client, headers: dict) -> None:
    activity = {
        "name": "Batch promo",
        "state": "approved",
        "locations": {"mboxes": [{"locationLocalId": 0, "name": "batch-promo"}]},
        "experiences": [
            {
                "experienceLocalId": 0,
                "name": "Only",
                "visitorPercentage": 100,
                "offerLocations": [{"locationLocalId": 0, "offerId": "{operationIdResponse:1}"}],
            }
        ],
    }
    results = run(
        emulator,
        headers,
        op(3, "GET", "/target/offers/content/{operationIdResponse:1}", dependsOnOperationIds=[1]),
        op(1, "POST", "/v1/offers", {"name": "batch offer", "content": "<p>from a batch</p>"}),
        op(2, "POST", "/target/activities/ab", activity, dependsOnOperationIds=[1]),
        op(
            4,
            "PUT",
            f"/{TENANT}/target/activities/{{operationIdResponse:2}}/name",
            {"name": "Renamed {operationIdResponse:2}"},
        ),
    )

    offer_id = results[1]["body"]["id"]
    assert results[1]["statusCode"] == 200 and results[1]["skipped"] is False
    assert results[1]["headers"] == [{"name": "Content-Type", "value": "application/json; charset=UTF-8"}]
    assert results[2]["statusCode"] == 201, results[2]
    assert results[2]["body"]["experiences"][0]["offerLocations"][0]["offerId"] == offer_id, (
        "a whole reference is the id itself"
    )
    assert results[3]["body"]["content"] == "<p>from a batch</p>"
    activity_id = results[2]["body"]["id"]
    assert results[4]["body"]["name"] == f"Renamed {activity_id}", "a reference inside text is the id's text"
    shown = delivery(emulator, {"id": {"tntId": "b"}, "execute": {"mboxes": [{"index": 0, "name": "batch-promo"}]}})
    assert shown["execute"]["mboxes"][0]["options"][0]["content"] == "<p>from a batch</p>"


def test_failures_skip_their_dependants_and_nothing_else(emulator: httpx.Client, headers: dict) -> None:
    results = run(
        emulator,
        headers,
        op(0, "GET", "/target/offers/content/1"),
        op(1, "DELETE", "/target/offers/content/400001", dependsOnOperationId=0),
        op(2, "GET", "/target/offers", dependsOnOperationIds=[1]),
        op(3, "PUT", "/target/activities/200006/state", {"state": "saved"}),
        op(4, "GET", "/target/environments", dependsOnOperationIds=[3]),
        op(5, "GET", "/no/such/api"),
    )

    assert results[0]["statusCode"] == 404 and results[0]["body"]["errors"][0]["errorCode"] == "NotFound"
    assert results[1] == {"operationId": 1, "skipped": True}
    assert results[2] == {"operationId": 2, "skipped": True}, "skips are transitive"
    assert results[3]["statusCode"] == 200 and results[4]["statusCode"] == 200
    assert results[5]["statusCode"] == 404, "an unknown relative URL fails only its operation"
    assert ok(emulator.get(f"/{TENANT}/target/offers/content/400001", headers=headers))["id"] == 400001


def test_operations_answer_validation_errors_in_their_results(emulator: httpx.Client, headers: dict) -> None:
    results = run(
        emulator,
        headers,
        op(0, "POST", "/target/offers/content", {"name": ""}),
        op(1, "PUT", "/target/activities/200006/priority", {"priority": 5000}),
        op(2, "POST", "/target/batch", {"operations": []}),
        op(3, "GET", "/target/offers?limit=1&sortBy=-id"),
        op(4, "POST", "/target/offers/content", headers=[{"name": "Content-Type", "value": "text/csv"}], body={}),
    )

    assert results[0]["statusCode"] == 400 and results[0]["body"]["errors"][0]["meta"] == {"field": "name"}
    assert results[1]["statusCode"] == 400
    assert results[2]["statusCode"] == 400, "a batch cannot nest a batch"
    assert [o["id"] for o in results[3]["body"]["offers"]] == [400060]
    assert results[4]["statusCode"] == 415


@pytest.mark.parametrize(
    ("operations", "field"),
    [
        ([], "operations"),
        ([op(n, "GET", "/target/offers") for n in range(256)] + [op(0, "GET", "/target/offers")], "operations"),
        ([op(0, "GET", "/target/offers"), op(0, "GET", "/target/offers")], "operations[1].operationId"),
        ([op(256, "GET", "/target/offers")], "operations[0].operationId"),
        ([op(True, "GET", "/target/offers")], "operations[0].operationId"),
        ([op(0, "HEAD", "/target/offers")], "operations[0].method"),
        ([op(0, "GET", "target/offers")], "operations[0].relativeUrl"),
        (
            [op(0, "GET", "/target/offers", headers=[{"name": f"h{n}", "value": ""} for n in range(51)])],
            "operations[0].headers",
        ),
        ([op(0, "GET", "/target/offers", dependsOnOperationIds=[7])], "operations[0].dependsOnOperationIds"),
        ([op(0, "GET", "/target/offers", dependsOnOperationIds=[0])], "operations[0].dependsOnOperationIds"),
        (
            [op(0, "GET", "/target/offers", dependsOnOperationIds=[1, 1]), op(1, "GET", "/")],
            "operations[0].dependsOnOperationIds",
        ),
        (
            [
                op(0, "GET", "/target/offers", dependsOnOperationIds=[2]),
                op(1, "GET", "/target/offers", dependsOnOperationIds=[0]),
                op(2, "GET", "/target/offers", dependsOnOperationId=1),
            ],
            "dependsOnOperationIds",
        ),
        (
            [op(0, "GET", "/target/offers"), op(1, "GET", "/target/offers/content/{operationIdResponse:0}")],
            "operations[1]",
        ),
        ([op(1, "GET", "/target/offers/content/{operationIdResponse:9}")], "operations[0]"),
    ],
    ids=[
        "none",
        "257",
        "duplicate-id",
        "id-256",
        "id-bool",
        "method",
        "not-relative",
        "51-headers",
        "unknown-dependency",
        "self-dependency",
        "repeated-dependency",
        "cycle",
        "reference-to-get",
        "reference-to-nothing",
    ],
)
def test_invalid_batches_are_refused_whole(emulator: httpx.Client, headers: dict, operations: list, field: str) -> None:
    response = emulator.post(BATCH, json={"operations": operations}, headers=headers)

    assert assert_admin_error(response, 400)["meta"] == {"field": field}


def test_a_full_batch_of_256_operations_runs(emulator: httpx.Client, headers: dict) -> None:
    ok(emulator.post("/_emulator/limits", json={"admin_rate_per_minute": 1000}))

    results = run(emulator, headers, *[op(n, "GET", "/v1/environments/8818") for n in range(256)])

    assert {r["statusCode"] for r in results.values()} == {200}


def test_each_operation_counts_against_the_rate(emulator: httpx.Client, headers: dict) -> None:
    ok(emulator.post("/_emulator/limits", json={"admin_rate_per_minute": 3}))

    results = run(
        emulator,
        headers,
        *[op(n, "GET", "/target/environments") for n in range(4)],
        op(4, "GET", "/target/mboxes", dependsOnOperationIds=[3]),
    )
    after = emulator.get(f"/{TENANT}/target/environments", headers=headers)

    assert [results[n]["statusCode"] for n in range(3)] == [200, 200, 200]
    assert results[3]["statusCode"] == 503, "the batch call pays for the first operation, two more fill the window"
    assert results[3]["body"]["errors"][0]["errorCode"] == "Throttled"
    assert results[4] == {"operationId": 4, "skipped": True}
    assert_admin_error(after, 503, "Throttled")
