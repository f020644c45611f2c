"""The profile APIs through the gateway: fetch by tntId and thirdPartyId and single updates on the
visitor's edge, bulk update v2 as a URL-encoded form with its batch status read through the gateway on
the edge that took the batch, and the profile scope on every write."""

from __future__ import annotations

import csv
import http.client
import io
import re
import uuid
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit
from xml.etree import ElementTree

import httpx
import orjson
import pytest

from tests.admin.support import AS_ADMIN, AS_PROFILE, assert_error, calls, last_request, ok
from tests.gateways import OwnGateway, own_gateway
from tests.support import wait_for

EDGE = re.compile(r"mboxedge\d+\.tt\.omtrdc\.net")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BATCH_UPDATE = "/m2/demo/v2/profile/batchUpdate"


def visitor() -> str:
    return f"profile-{uuid.uuid4().hex[:10]}"


def attributes(document: dict[str, Any]) -> dict[str, str]:
    return {name: entry["value"] for name, entry in document["profileAttributes"].items()}


def xml(response: httpx.Response) -> ElementTree.Element:
    assert response.status_code == 200, response.text
    return ElementTree.fromstring(response.text)


def first_view(gw: OwnGateway, third_party_id: str | None = None) -> str:
    """A visitor's first request through the gateway, which pins it to an edge; its tntId."""
    ids = {"thirdPartyId": third_party_id} if third_party_id else {}
    answer = ok(gw.client.post(f"/rest/v1/mbox/{visitor()}?client=demo", json={"mbox": "home-hero", **ids}))
    return str(answer.get("tntId", ""))


def replicated(gw: OwnGateway, tnt_id: str) -> dict[str, str]:
    """A profile's attributes once they reached the edge the gateway asks (bulk writes replicate between
    edges after a while, and the gateway knows no edge for these visitors)."""

    def read() -> dict[str, str] | None:
        response = gw.client.get(f"/rest/v1/profiles/{tnt_id}", params={"client": "demo"})
        return attributes(response.json()) or None if response.status_code == 200 else None

    return wait_for(read)


def encoded_batch(rows: list[list[str]], **other_fields: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return ("batch=" + quote_plus(buffer.getvalue()) + "".join(f"&{k}={v}" for k, v in other_fields.items())).encode()


def test_an_update_is_read_back_at_once_from_the_visitors_edge(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    tnt_id = first_view(admin_gateway)
    update = admin_gateway.client.get(
        "/m2/demo/profile/update", params={"mboxPC": tnt_id, "profile.color": "blue"}, headers=AS_PROFILE
    )
    assert xml(update).findtext("success") == "true"

    fetched = ok(admin_gateway.client.get(f"/rest/v1/profiles/{tnt_id}", params={"client": "demo"}))

    assert attributes(fetched)["color"] == "blue"
    assert fetched["tntId"] == tnt_id, "the location suffix stays at the gateway"
    written_on = last_request(emulator, "profile_update")["headers"]["host"]
    read_on = last_request(emulator, "profile")["headers"]["host"]
    assert EDGE.fullmatch(written_on) and read_on == written_on


def test_a_third_party_id_profile_is_updated_by_form_and_fetched(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    who = visitor()
    first_view(admin_gateway, who)
    form = urlencode({"mbox3rdPartyId": who, "profile.plan": "family & friends", "profile.city": "São Paulo"})

    xml(admin_gateway.client.post("/m2/demo/profile/update", content=form, headers={**AS_PROFILE, **FORM}))
    fetched = ok(admin_gateway.client.get(f"/rest/v1/profiles/thirdPartyId/{who}", params={"client": "demo"}))

    assert {"plan": "family & friends", "city": "São Paulo"}.items() <= attributes(fetched).items()
    assert (
        last_request(emulator, "profile_third_party")["headers"]["host"]
        == last_request(emulator, "profile_update")["headers"]["host"]
    )


def test_a_bulk_batch_is_taken_and_its_status_read_through_the_gateway(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    rows = [
        ["pcId", "city", "note"],
        ["bulk-1", "São Paulo", "a, b & c"],
        ["bulk-2", "New York", "50% + tax = total"],
        ["bulk-3", "Zürich", 'say "hi"\nthen go'],
    ]

    answer = xml(
        admin_gateway.client.post(
            BATCH_UPDATE, content=encoded_batch(rows, source="crm"), headers={**AS_PROFILE, **FORM}
        )
    )

    status_link = urlsplit(answer.findtext("batchStatus") or "")
    assert f"{status_link.scheme}://{status_link.netloc}" == admin_gateway.url, "the status link leads to the gateway"
    status = xml(admin_gateway.client.get(f"{status_link.path}?{status_link.query}", headers=AS_PROFILE))
    assert status.findtext("status") == "complete"
    assert [(p.findtext("id"), p.findtext("status")) for p in status.iter("profile")] == [
        ("bulk-1", "success"),
        ("bulk-2", "success"),
        ("bulk-3", "success"),
    ]
    assert EDGE.fullmatch(last_request(emulator, "profile_batch_status")["headers"]["host"]), "asked where it was taken"
    for row in rows[1:]:
        assert replicated(admin_gateway, row[0]) == {"city": row[1], "note": row[2]}


def test_a_bulk_batch_sent_as_a_raw_file_is_taken_too(admin_gateway: OwnGateway) -> None:
    body = b"batch=pcId,plan\nraw-1,gold+\n"

    answer = xml(admin_gateway.client.post(BATCH_UPDATE, content=body, headers={**AS_PROFILE, **FORM}))

    assert answer.findtext("success") == "true"
    assert replicated(admin_gateway, "raw-1") == {"plan": "gold+"}


def test_an_unknown_batch_is_upstreams_404(admin_gateway: OwnGateway) -> None:
    missing = admin_gateway.client.get(
        "/m2/demo/v2/profile/batchStatus", params={"batchId": "demo-1"}, headers=AS_PROFILE
    )

    assert_error(missing, 404, "No batch found with id=demo-1")


def test_an_empty_batch_is_refused_before_any_upstream_call(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    assert_error(admin_gateway.client.post(BATCH_UPDATE, content=b"  \n", headers={**AS_PROFILE, **FORM}), 400)
    assert calls(emulator) == {}


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (AS_ADMIN, 403)], ids=["no-key", "admin-scope"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/m2/demo/profile/update?mboxPC=1-1&profile.a=b", None),
        ("POST", "/m2/demo/profile/update", b"mboxPC=1-1&profile.a=b"),
        ("POST", BATCH_UPDATE, b"batch=pcId%2Ca%0A1-1%2Cb%0A"),
        ("GET", "/m2/demo/v2/profile/batchStatus?batchId=demo-1", None),
    ],
    ids=["update", "update-form", "bulk", "bulk-status"],
)
def test_profile_writes_need_the_profile_scope(
    shared_admin_gateway: OwnGateway,
    emulator: httpx.Client,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
) -> None:
    response = shared_admin_gateway.client.request(method, path, content=body, headers={**headers, **FORM})

    assert_error(response, status)
    assert calls(emulator) == {}


def test_profile_reads_are_open_unless_configured_otherwise(
    admin_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(admin_settings, profile_read_requires_key=True) as gw:
        refused = gw.client.get("/rest/v1/profiles/1-1", params={"client": "demo"})
        refused_third_party = gw.client.get("/rest/v1/profiles/thirdPartyId/crm-1", params={"client": "demo"})
        wrong_scope = gw.client.get("/rest/v1/profiles/1-1", params={"client": "demo"}, headers=AS_ADMIN)
        allowed = gw.client.get("/rest/v1/profiles/1-1", params={"client": "demo"}, headers=AS_PROFILE)

    assert_error(refused, 401)
    assert_error(refused_third_party, 401)
    assert_error(wrong_scope, 403)
    assert allowed.status_code == 404, "the key let the call through; upstream knows no such profile"
    assert calls(emulator) == {"profile": 1}


def test_a_batch_over_50_mb_is_refused_before_any_upstream_call(
    shared_admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    address = urlsplit(shared_admin_gateway.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.putrequest("POST", BATCH_UPDATE)
        for name, value in {**AS_PROFILE, **FORM, "Content-Length": str(50 * 1024 * 1024 + 1)}.items():
            connection.putheader(name, value)
        connection.endheaders()  # the body never follows: the declared length is enough to refuse
        response = connection.getresponse()
        status, body = response.status, orjson.loads(response.read())
    finally:
        connection.close()

    assert (status, body["status"]) == (413, 413) and "exceeds" in body["message"]
    assert calls(emulator) == {}
