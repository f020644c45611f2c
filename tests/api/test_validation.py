"""Every row of the documents' validation tables through ``proxy.api.validation`` in this process: the bad
body refused naming the field, its valid neighbour accepted (``tests/test_validation.py`` sends the same
rows to a gateway and checks that nothing reached upstream)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from proxy.api import validation
from proxy.http.errors import ApiError
from tests.validation_rows import BATCH_ROWS, DELIVERY_ROWS, ENTRY_ROWS, SINGLE_ROWS, UPDATE_ROWS, rows


def wire(body: Any) -> Any:
    """The body as the gateway reads it off the wire (and a copy: the validators may rewrite it)."""
    return orjson.loads(orjson.dumps(body))


def refused(check: Callable[[Any], Any], bad: Any, field: str) -> None:
    with pytest.raises(ApiError) as refusal:
        check(wire(bad))
    assert (refusal.value.status, refusal.value.field) == (400, field), refusal.value.message
    assert refusal.value.message.startswith(f"{field}: ") or field in refusal.value.message


def delivery(body: Any) -> Any:
    return validation.delivery(body)


def batch(body: Any) -> Any:
    return validation.batch_mbox(body)


@rows(*SINGLE_ROWS)
def test_single_mbox_rows(bad: dict[str, Any], field: str, good: dict[str, Any]) -> None:
    refused(validation.single_mbox, bad, field)
    validation.single_mbox(wire(good))


@rows(*BATCH_ROWS)
def test_batch_rows(bad: dict[str, Any], field: str, good: dict[str, Any]) -> None:
    refused(batch, bad, field)
    batch(wire(good))


@pytest.mark.parametrize("key", ["mboxes", "prefetch"])
@rows(*ENTRY_ROWS)
def test_batch_entry_rows(key: str, bad: dict[str, Any], field: str, good: dict[str, Any]) -> None:
    refused(batch, {"client": "demo", key: [bad]}, f"{key}[0].{field}")
    batch(wire({"client": "demo", key: [good]}))


@rows(*DELIVERY_ROWS)
def test_delivery_rows(bad: dict[str, Any], field: str, good: dict[str, Any]) -> None:
    refused(delivery, bad, field)
    delivery(wire(good))


@rows(*UPDATE_ROWS)
def test_profile_update_rows(bad: dict[str, str], field: str, good: dict[str, str]) -> None:
    refused(validation.profile_update, bad, field)
    validation.profile_update(wire(good))
