"""The delivery routes' fast path (``proxy.http.hotpath``), in this process: queries, request ids, and which
handler a path reaches."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.http.hotpath import HotPaths, Incoming, Outgoing, RequestIds, parse_query


@pytest.mark.parametrize(
    ("query", "parsed"),
    [
        ("", {}),
        ("client=demo", {"client": "demo"}),
        ("a=1&b=x%20y", {"a": "1", "b": "x y"}),
        ("a=1+2", {"a": "1 2"}),
        ("flag&a=", {"flag": "", "a": ""}),
        ("a=1&&b=2", {"a": "1", "b": "2"}),
    ],
)
def test_a_query_reads_as_the_standard_parser_reads_it(query: str, parsed: dict[str, str]) -> None:
    assert parse_query(query) == parsed


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.text("abc_", min_size=1, max_size=4), st.text("xyz 1+%&=", max_size=5)), max_size=4))
def test_the_fast_query_parser_agrees_with_the_standard_one(pairs: list[tuple[str, str]]) -> None:
    from urllib.parse import parse_qsl, urlencode

    query = urlencode(pairs)
    assert parse_query(query) == dict(parse_qsl(query, keep_blank_values=True))


def test_a_session_id_in_the_query_decodes_as_a_path_segment() -> None:
    incoming = Incoming("/rest/v1/delivery", None, "client=demo&sessionId=a%2Fb+c", {}, None, b"")
    assert incoming.query_value("sessionId") == "a/b+c"  # "+" stays a plus, as in a path
    assert incoming.query["sessionId"] == "a/b c"  # the form reading, for everything else
    assert incoming.query_value("missing") is None


def test_a_request_id_is_kept_when_it_is_visible_ascii_else_one_is_made() -> None:
    ids = RequestIds()
    assert ids.of("abc-123") == "abc-123"
    made = [ids.of(given) for given in (None, "", "has space", "x" * 129, "é")]
    assert len(set(made)) == len(made) and all(m.startswith(made[0].split("-")[0]) for m in made)


def test_exact_paths_and_one_segment_prefixes_reach_their_handlers() -> None:
    async def handler(incoming: Incoming) -> Outgoing:
        return Outgoing(200, b"")

    paths = HotPaths(fallback=None, max_body_bytes=1024, observe=lambda *args: None)  # type: ignore[arg-type]
    paths.exact("/rest/v1/mbox", handler, "/rest/v1/mbox")
    paths.prefix("/rest/v1/mbox/", handler, "/rest/v1/mbox/{sessionId}")

    def match(path: str, raw: bytes | None = None) -> Any:
        scope = {"type": "http", "method": "POST", "path": path, "raw_path": raw or path.encode(), "headers": []}
        found = paths._match(scope)
        return None if found is None else (found[1], found[2])

    assert match("/rest/v1/mbox") == ("/rest/v1/mbox", None)
    assert match("/rest/v1/mbox/s-1") == ("/rest/v1/mbox/{sessionId}", "s-1")
    assert match("/rest/v1/mbox/a/b", b"/rest/v1/mbox/a%2Fb") == ("/rest/v1/mbox/{sessionId}", "a/b")
    assert match("/rest/v2/batchmbox") is None
    assert paths.routes() == {"/rest/v1/mbox", "/rest/v1/mbox/{sessionId}"}
