"""Reading JSON request bodies (``proxy.http.bodies``), in this process: what is refused, and how it is named."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.http.bodies import MAX_JSON_DEPTH, nested_beyond, parse_json
from proxy.http.errors import ApiError


def refusal(raw: bytes) -> tuple[str, str]:
    with pytest.raises(ApiError) as refused:
        parse_json(raw)
    assert refused.value.status == 400
    return refused.value.message, refused.value.field or ""


def test_an_empty_or_malformed_body_names_the_body() -> None:
    assert refusal(b"") == ("body: a JSON body is required", "body")
    assert refusal(b"{") == ("body: malformed JSON", "body")


@pytest.mark.parametrize("levels", [1, MAX_JSON_DEPTH])
def test_up_to_the_limit_a_body_is_read(levels: int) -> None:
    assert parse_json(b"[" * levels + b"]" * levels) is not None


def test_one_level_more_is_refused_naming_where() -> None:
    raw = b'{"context":{"extra":' + b'{"k":' * MAX_JSON_DEPTH + b"1" + b"}" * MAX_JSON_DEPTH + b"}}"
    message, field = refusal(raw)
    assert field == "context.extra.k.k…"
    assert message == f"{field}: nested more than {MAX_JSON_DEPTH} levels deep"


def test_past_the_readers_own_limit_the_body_is_named() -> None:
    assert refusal(b"[" * 5000 + b"]" * 5000) == (f"body: nested more than {MAX_JSON_DEPTH} levels deep", "body")


def test_a_long_key_is_cut_in_the_name() -> None:
    key = "x" * 500
    deep = b'{"k":' * MAX_JSON_DEPTH + b"1" + b"}" * MAX_JSON_DEPTH
    _, field = refusal(b'{"' + key.encode() + b'":' + deep + b"}")
    assert field.startswith("x" * 64 + "…") and len(field) < 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=30,
)


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(value=json_values, limit=st.integers(min_value=1, max_value=6))
def test_nested_beyond_agrees_with_the_depth(value: object, limit: int) -> None:
    found = nested_beyond(value, limit)
    assert (found is not None) == (depth(value) > limit), (value, limit, found)
