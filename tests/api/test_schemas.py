"""The OpenAPI document's request schemas are the ones the gateway checks with: every row of the
documents' validation tables, held to the published JSON schema (``/openapi.json``'s components) as a
client's own validator would read it. What a JSON schema cannot say (names Target reserves, the
``-clicked`` suffix of prefetched mboxes, the total length of product ids) the schema describes in words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema
import orjson
import pytest

from proxy.api import validation
from proxy.api.openapi import document
from proxy.http.errors import ApiError
from tests.validation_rows import BATCH_ROWS, DELIVERY_ROWS, ENTRY_ROWS, SINGLE_ROWS, Row

# Refusals made by rules across members, which the document states in a description.
RULES = (
    "is a reserved name",
    "prefetched mboxes may not have the '-clicked' suffix",
    "total length of the comma-separated ids must be at most 250",
)
COMPONENTS = document()["components"]["schemas"]


def validator(component: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(COMPONENTS[component], format_checker=jsonschema.FormatChecker())


def in_a_batch(row: Row) -> Row:
    name, bad, field, good = row
    return name, {"client": "demo", "prefetch": [bad]}, f"prefetch[0].{field}", {"client": "demo", "prefetch": [good]}


CASES: list[tuple[str, Callable[[Any], Any], Row]] = [
    *(("SingleMboxRequest", validation.single_mbox, row) for row in SINGLE_ROWS),
    *(("BatchMboxRequest", validation.batch_mbox, row) for row in BATCH_ROWS),
    *(("BatchMboxRequest", validation.batch_mbox, in_a_batch(row)) for row in ENTRY_ROWS),
    *(("DeliveryRequest", validation.delivery, row) for row in DELIVERY_ROWS),
]


@pytest.mark.parametrize(("component", "check", "row"), CASES, ids=[f"{c}-{row[0]}" for c, _, row in CASES])
def test_the_document_accepts_what_the_gateway_accepts_and_refuses_what_it_refuses(
    component: str, check: Callable[[Any], Any], row: Row
) -> None:
    _, bad, field, good = row
    schema = validator(component)
    assert not list(schema.iter_errors(good)), "a body the gateway accepts is valid by the document"
    with pytest.raises(ApiError) as refusal:
        check(orjson.loads(orjson.dumps(bad)))
    assert refusal.value.field == field
    if not refusal.value.message.endswith(RULES):  # (those are in the next test)
        assert not schema.is_valid(bad), f"the document lets through what the gateway refuses: {refusal.value}"


def test_the_rules_beyond_json_schema_are_described() -> None:
    batch = str(COMPONENTS["BatchMboxRequest"])
    assert "** any mbox **" in batch and "``-clicked``" in batch and "250 characters in all" in batch
    assert "``-clicked``" in str(COMPONENTS["DeliveryRequest"]["properties"]["prefetch"])
    assert "``-clicked``" not in str(COMPONENTS["DeliveryRequest"]["properties"]["execute"])
