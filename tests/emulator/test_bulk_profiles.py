"""Bulk profile update v2: POST /m2/{client}/v2/profile/batchUpdate and GET .../batchStatus."""

from __future__ import annotations

import re
from urllib.parse import quote_plus, urlsplit
from xml.etree import ElementTree

import httpx
import pytest

from tests.emulator.support import (
    BANNER_GOLD,
    CLIENT,
    assert_bad_request,
    attributes,
    edge,
    mbox,
    profile,
)

BATCH_UPDATE = f"/m2/{CLIENT}/v2/profile/batchUpdate"
BATCH_STATUS = f"/m2/{CLIENT}/v2/profile/batchStatus"


def submit(client: httpx.Client, body: str | bytes, cluster: int = 28) -> ElementTree.Element:
    response = client.post(BATCH_UPDATE, content=body, headers=edge(cluster))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ElementTree.fromstring(response.text)


def status_rows(client: httpx.Client, batch_id: str) -> list[tuple[str, str]]:
    response = client.get(BATCH_STATUS, params={"batchId": batch_id})
    assert response.status_code == 200, response.text
    document = ElementTree.fromstring(response.text)
    assert document.findtext("batchId") == batch_id
    assert document.findtext("status") == "complete"
    rows = [(p.findtext("id") or "", p.findtext("status") or "") for p in document.iter("profile")]
    assert document.findtext("batchSize") == str(len(rows))
    return rows


def test_a_batch_creates_and_updates_profiles_by_pc_id(emulator: httpx.Client) -> None:
    answer = submit(emulator, "batch=pcId,memberLevel,city\n111-222,gold,paris\n333-444,,lyon\n")

    assert answer.findtext("success") == "true"
    assert answer.findtext("message") == "Batch submitted for processing"
    batch_id = answer.findtext("batchId") or ""
    assert re.fullmatch(rf"{CLIENT}-\d+", batch_id)
    assert status_rows(emulator, batch_id) == [("111-222", "success"), ("333-444", "success")]
    assert attributes(profile(emulator, "111-222", cluster=28)) == {"memberLevel": "gold", "city": "paris"}
    assert attributes(profile(emulator, "333-444", cluster=28)) == {"city": "lyon"}


def test_the_status_link_names_the_batch(emulator: httpx.Client) -> None:
    answer = submit(emulator, "batch=pcId,a\n1-1,x\n", cluster=34)

    link = urlsplit(answer.findtext("batchStatus") or "")
    assert link.netloc == "mboxedge34.tt.omtrdc.net"
    response = emulator.get(f"{link.path}?{link.query}")
    assert response.status_code == 200
    assert "<status>success</status>" in response.text


def test_a_batch_updates_an_existing_visitor_for_decisioning(emulator: httpx.Client) -> None:
    tnt_id = mbox(emulator, {"mbox": "home-hero"}, cluster=28)["tntId"]

    submit(emulator, f"batch=pcId,memberLevel\n{tnt_id},gold\n")

    assert mbox(emulator, {"mbox": "home-banner", "tntId": tnt_id}, cluster=28)["content"] == BANNER_GOLD


def test_a_batch_by_third_party_id(emulator: httpx.Client) -> None:
    answer = submit(emulator, "batch=thirdPartyId,plan\ncrm-10,family\n")

    assert status_rows(emulator, answer.findtext("batchId") or "") == [("crm-10", "success")]
    fetched = emulator.get("/rest/v1/profiles/thirdPartyId/crm-10", params={"client": CLIENT}, headers=edge(28))
    assert attributes(fetched.json()) == {"plan": "family"}


def test_a_form_encoded_batch_file_is_accepted(emulator: httpx.Client) -> None:
    body = "batch=" + quote_plus("pcId,color\n777-888,blue\n")

    answer = submit(emulator, body)

    assert status_rows(emulator, answer.findtext("batchId") or "") == [("777-888", "success")]
    assert attributes(profile(emulator, "777-888", cluster=28)) == {"color": "blue"}


def test_rows_are_answered_one_by_one(emulator: httpx.Client) -> None:
    long_id, long_value = "i" * 129, "v" * 257
    body = f"batch=pcId,a\n1-1,ok\n{long_id},x\n2-2,{long_value}\n3-3,{'v' * 256}\n"

    answer = submit(emulator, body)

    assert status_rows(emulator, answer.findtext("batchId") or "") == [
        ("1-1", "success"),
        (long_id, "failed: invalid id"),
        ("2-2", "failed: value longer than 256"),
        ("3-3", "success"),
    ]
    assert emulator.get("/rest/v1/profiles/2-2", params={"client": CLIENT}).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        "",
        "batch=",
        "batch=email,a\nx,1\n",
        "batch=pcId\n1-1\n",
        f"batch=pcId,{'n' * 129}\n1-1,x\n",
        b"\xff\xfe",
    ],
    ids=["empty", "empty-batch", "unknown-id-column", "no-attributes", "long-attribute-name", "not-utf8"],
)
def test_a_malformed_batch_file_is_refused(emulator: httpx.Client, body: str | bytes) -> None:
    assert_bad_request(emulator.post(BATCH_UPDATE, content=body), "batch")


def test_batch_status_needs_a_known_batch_id(emulator: httpx.Client) -> None:
    assert_bad_request(emulator.get(BATCH_STATUS), "batchId")

    missing = emulator.get(BATCH_STATUS, params={"batchId": "demo-1"})
    assert missing.status_code == 404
    assert missing.json() == {"status": 404, "message": "No batch found with id=demo-1", "field": "batchId"}


def test_a_reset_forgets_batches(emulator: httpx.Client) -> None:
    batch_id = submit(emulator, "batch=pcId,a\n1-1,x\n").findtext("batchId")

    emulator.post("/_emulator/reset").raise_for_status()

    assert emulator.get(BATCH_STATUS, params={"batchId": batch_id}).status_code == 404
