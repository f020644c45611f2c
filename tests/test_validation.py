"""Every row of the documents' validation tables, sent to the gateway: refused with a 400 naming the
field before any upstream call (the emulator saw nothing), while the valid neighbour goes through."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import PROFILE_KEY
from tests.validation_rows import BATCH_ROWS, DELIVERY_ROWS, ENTRY_ROWS, SINGLE_ROWS, UPDATE_ROWS, rows


def refused_without_upstream_call(answer: httpx.Response, field: str, emulator: httpx.Client) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["status"] == 400
    assert body["field"] == field
    assert emulator.get("/_emulator/stats").json()["requests"] == {}


@rows(*SINGLE_ROWS)
def test_single_mbox_rows(
    gateway: httpx.Client, emulator: httpx.Client, bad: dict[str, Any], field: str, good: dict[str, Any]
) -> None:
    refused_without_upstream_call(gateway.post("/rest/v1/mbox/s1?client=demo", json=bad), field, emulator)
    assert gateway.post("/rest/v1/mbox/s1?client=demo", json=good).status_code == 200


@rows(*BATCH_ROWS)
def test_batch_rows(
    gateway: httpx.Client, emulator: httpx.Client, bad: dict[str, Any], field: str, good: dict[str, Any]
) -> None:
    refused_without_upstream_call(gateway.post("/rest/v2/batchmbox", json=bad), field, emulator)
    assert gateway.post("/rest/v2/batchmbox", json=good).status_code == 200


@pytest.mark.parametrize("key", ["mboxes", "prefetch"])
@rows(*ENTRY_ROWS)
def test_batch_entry_rows(
    gateway: httpx.Client,
    emulator: httpx.Client,
    key: str,
    bad: dict[str, Any],
    field: str,
    good: dict[str, Any],
) -> None:
    answer = gateway.post("/rest/v2/batchmbox", json={"client": "demo", key: [bad]})
    refused_without_upstream_call(answer, f"{key}[0].{field}", emulator)
    assert gateway.post("/rest/v2/batchmbox", json={"client": "demo", key: [good]}).status_code == 200


@rows(*DELIVERY_ROWS)
def test_delivery_rows(
    gateway: httpx.Client, emulator: httpx.Client, bad: dict[str, Any], field: str, good: dict[str, Any]
) -> None:
    path = "/rest/v1/delivery?client=demo&sessionId=s1"
    refused_without_upstream_call(gateway.post(path, json=bad), field, emulator)
    assert gateway.post(path, json=good).status_code == 200


@rows(*UPDATE_ROWS)
def test_profile_update_rows(
    gateway: httpx.Client, emulator: httpx.Client, bad: dict[str, str], field: str, good: dict[str, str]
) -> None:
    auth = {"Authorization": f"Bearer {PROFILE_KEY}"}
    refused_without_upstream_call(gateway.get("/m2/demo/profile/update", params=bad, headers=auth), field, emulator)
    assert gateway.get("/m2/demo/profile/update", params=good, headers=auth).status_code == 200
