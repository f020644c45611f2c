"""The emulator's request tables (``proxy.emulator.tables``) and the gateway's validation
(``proxy.api.validation``) are written apart; here every row of the documents' tables goes through both in
this process, and both must refuse its bad body with the same status, field and message, and accept its
valid neighbour (``test_validation_table.py`` sends the same rows to a running emulator)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from proxy.api import validation
from proxy.emulator import tables
from proxy.emulator.errors import EdgeError
from proxy.http.errors import ApiError
from tests.validation_rows import BATCH_ROWS, DELIVERY_ROWS, ENTRY_ROWS, SINGLE_ROWS, UPDATE_ROWS

Check = Callable[[Any], Any]


def wire(body: Any) -> Any:
    """A fresh copy of the body as read off the wire (both may rewrite it)."""
    return orjson.loads(orjson.dumps(body))


def refusal(check: Check, body: Any) -> tuple[int, str | None, str]:
    try:
        check(wire(body))
    except (ApiError, EdgeError) as exc:
        return exc.status, exc.field, exc.message
    raise AssertionError(f"{check.__module__}.{check.__name__} accepted {body!r}")


def batch_entry(key: str) -> Callable[[Any], Any]:
    return lambda entry: {"client": "demo", key: [entry]}


# (emulator's check, gateway's check, rows, how a row's body is sent, where its field is)
TABLES = [
    (tables.single_mbox, validation.single_mbox, SINGLE_ROWS, None, ""),
    (tables.batch_mbox, validation.batch_mbox, BATCH_ROWS, None, ""),
    (tables.batch_mbox, validation.batch_mbox, ENTRY_ROWS, batch_entry("mboxes"), "mboxes[0]."),
    (tables.batch_mbox, validation.batch_mbox, ENTRY_ROWS, batch_entry("prefetch"), "prefetch[0]."),
    (tables.delivery, validation.delivery, DELIVERY_ROWS, None, ""),
    (tables.profile_update, validation.profile_update, UPDATE_ROWS, None, ""),
]
CASES = [
    pytest.param(emulator, gateway, *row[1:], within, at, id=f"{emulator.__name__}{'-' + at if at else ''}-{row[0]}")
    for emulator, gateway, table, within, at in TABLES
    for row in table
]


@pytest.mark.parametrize(("emulator", "gateway", "bad", "field", "good", "within", "at"), CASES)
def test_both_refuse_each_row_alike(
    emulator: Check, gateway: Check, bad: Any, field: str, good: Any, within: Any, at: str
) -> None:
    wrap = within or (lambda body: body)
    refused = refusal(emulator, wrap(bad))
    assert refused[:2] == (400, at + field)
    assert refused == refusal(gateway, wrap(bad))
    assert emulator(wire(wrap(good))) == gateway(wire(wrap(good)))


def test_names_sent_as_numbers_are_read_as_their_text_by_both() -> None:
    body = {"client": "demo", "mboxes": [{"indexId": 0, "mbox": 12}], "notifications": [{"mbox": 7}]}

    assert tables.batch_mbox(wire(body)) == validation.batch_mbox(wire(body))
    assert tables.batch_mbox(wire(body))["mboxes"][0]["mbox"] == "12"
