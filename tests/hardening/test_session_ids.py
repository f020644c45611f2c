"""A session id follows one rule whether it comes in the path (``/rest/v1/mbox/{sessionId}``) or the query
(``/rest/v1/delivery?sessionId=``): both are percent-decoded the same way ("+" is a plus, "%2F" a slash
inside the id), then checked alike: 1-128 printable characters without space, "?" or "/"."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHECKED = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
TRICKY = ["a#b", "a+b", "a/b", "a%2Fb", "a b", "a?b", "é", "a\tb", "x" * 128, "x" * 129, "%", "+", "a;b", "a&b"]
session_ids = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=st.sampled_from("ab+#/%?&= \t;é~.-_"), min_size=1, max_size=12),
)


@pytest.fixture(scope="module")
def client(fuzzed: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzzed, timeout=10) as connection:
        yield connection


def statuses(client: httpx.Client, session: str) -> tuple[int, int]:
    encoded = quote(session, safe="")
    view = {"mbox": "home-hero", "thirdPartyId": "session-rule"}
    in_path = client.post(f"/rest/v1/mbox/{encoded}?client=demo", json=view)
    page = {"id": {"thirdPartyId": "session-rule"}, "context": {"channel": "web"},
            "execute": {"mboxes": [{"index": 0, "name": "home-hero"}]}}  # fmt: skip
    in_query = client.post(f"/rest/v1/delivery?client=demo&sessionId={encoded}", json=page)
    for answer in (in_path, in_query):
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 400:
            assert answer.json()["field"] == "sessionId", answer.text
    return in_path.status_code, in_query.status_code


@pytest.mark.parametrize("session", TRICKY)
def test_the_path_and_query_forms_agree_on_each_tricky_id(client: httpx.Client, session: str) -> None:
    in_path, in_query = statuses(client, session)
    assert in_path == in_query, f"{session!r}: path {in_path}, query {in_query}"


@CHECKED
@given(session=session_ids)
def test_the_path_and_query_forms_agree_on_any_id(client: httpx.Client, session: str) -> None:
    in_path, in_query = statuses(client, session)
    assert in_path == in_query, f"{session!r}: path {in_path}, query {in_query}"
    expected = (
        200
        if len(session) <= 128 and not any(c in "?/" or c.isspace() or not c.isprintable() for c in session)
        else 400
    )
    assert in_path == expected
