"""Whatever a notification's ``timestamp`` is, on the Delivery API and the batch mbox API: a 200, or a 400
naming the field; never a 500 (strings, lists, objects, booleans and numbers beyond 64 bits used to be)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHECKED = settings(
    max_examples=120, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64, -1, 1.5, 1_700_000_000, 1_700_000_000_000]),
)
stamps = st.one_of(
    numbers,
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.lists(numbers, max_size=2),
    st.dictionaries(st.text(max_size=2), numbers, max_size=1),
)


@pytest.fixture(scope="module")
def client(fuzzed: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzzed, timeout=10) as connection:
        yield connection


def send(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    try:
        content = orjson.dumps(body)
    except TypeError:  # a number orjson cannot write (beyond 64 bits): write it as Python would
        content = json.dumps(body).encode()
    return client.post(path, content=content, headers={"content-type": "application/json"})


@CHECKED
@given(stamp=stamps)
def test_any_timestamp_is_taken_or_refused_naming_it(client: httpx.Client, stamp: Any) -> None:
    delivery = {
        "id": {"thirdPartyId": "stamps"},
        "context": {"channel": "web"},
        "notifications": [{"id": "n-1", "type": "display", "timestamp": stamp, "tokens": ["t"]}],
    }
    batch = {
        "client": "demo",
        "id": {"thirdPartyId": "stamps"},
        "notifications": [{"id": "n-1", "mbox": "home-hero", "timestamp": stamp, "eventTokens": ["t"]}],
    }
    for path, body in (("/rest/v1/delivery?client=demo", delivery), ("/rest/v2/batchmbox", batch)):
        answer = send(client, path, body)
        assert answer.status_code in (200, 400), (path, stamp, answer.text)
        if answer.status_code == 400:
            assert answer.json()["field"] in ("notifications[0].timestamp", "body"), answer.text
