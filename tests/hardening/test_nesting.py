"""Unknown fields nested at any depth, anywhere in a request: answered (up to 100 levels) or refused with
a 400 naming the field; never a 500 (documents nested 255 to 1,024 levels deep used to be, because the
gateway could read them but not write them again). The admin and activation passthroughs forward such
a body as it came, so upstream answers it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening.conftest import FUZZ_KEY

CHECKED = settings(
    max_examples=120, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
LIMIT = 100
# Each place takes a JSON value `X`: (path, body, the field named when X is too deep, X's own level).
PLACES = [
    ("/rest/v1/delivery?client=demo",
     '{"id":{"thirdPartyId":"deep"},"context":{"channel":"web"},"extra":X}', "extra", 2),
    ("/rest/v1/delivery?client=demo",
     '{"id":{"thirdPartyId":"deep"},"context":{"channel":"web","extra":X},'
     '"execute":{"mboxes":[{"index":0,"name":"home-hero"}]}}', "context.extra", 3),
    ("/rest/v1/delivery?client=demo",
     '{"id":{"thirdPartyId":"deep"},"context":{"channel":"web"},'
     '"execute":{"mboxes":[{"index":0,"name":"home-hero","extra":X}]}}', "execute.mboxes[0].extra", 5),
    ("/rest/v1/delivery?client=demo",
     '{"id":{"thirdPartyId":"deep"},"context":{"channel":"web"},'
     '"notifications":[{"id":"n-1","type":"display","timestamp":1,"tokens":["t"],"extra":X}]}',
     "notifications[0].extra", 4),
    ("/rest/v2/batchmbox", '{"client":"demo","id":{"thirdPartyId":"deep"},"extra":X,'
     '"mboxes":[{"indexId":0,"mbox":"home-hero"}]}', "extra", 2),
    ("/rest/v2/batchmbox", '{"client":"demo","id":{"thirdPartyId":"deep"},'
     '"mboxes":[{"indexId":0,"mbox":"home-hero","extra":X}]}', "mboxes[0].extra", 4),
    ("/rest/v2/batchmbox", '{"client":"demo","id":{"thirdPartyId":"deep"},'
     '"notifications":[{"id":"n-1","mbox":"home-hero","timestamp":1,"eventTokens":["t"],"extra":X}]}',
     "notifications[0].extra", 4),
    ("/rest/v1/mbox/deep-session?client=demo", '{"mbox":"home-hero","thirdPartyId":"deep","extra":X}', "extra", 2),
]  # fmt: skip
PASSED_THROUGH = [
    ("/api/target/activities/ab", '{"name":"deep","extra":X}'),
    ("/data/core/activation/disflowprovider/adhocrun", '{"activationInfo":{"d":["a"]},"extra":X}'),
]
depths = st.one_of(
    st.sampled_from([1, LIMIT - 5, LIMIT - 4, LIMIT - 3, LIMIT - 1, LIMIT, 254, 255, 1023, 1024, 1025, 5000]),
    st.integers(min_value=1, max_value=1500),
)


def nested(levels: int, kind: str) -> str:
    return ('{"k":' * levels + "1" + "}" * levels) if kind == "object" else ("[" * levels + "1" + "]" * levels)


@pytest.fixture(scope="module")
def client(fuzzed: str) -> Iterator[httpx.Client]:
    headers = {"content-type": "application/json", "authorization": f"Bearer {FUZZ_KEY}"}
    with httpx.Client(base_url=fuzzed, timeout=10, headers=headers) as connection:
        yield connection


@CHECKED
@given(place=st.sampled_from(PLACES), levels=depths, kind=st.sampled_from(["object", "array"]))
def test_nesting_is_answered_or_refused_naming_the_field(
    client: httpx.Client, place: tuple[str, str, str, int], levels: int, kind: str
) -> None:
    path, template, field, own_level = place
    answer = client.post(path, content=template.replace("X", nested(levels, kind)))
    deepest = own_level + levels - 1  # the document itself is level 1
    if deepest <= LIMIT:
        assert answer.status_code == 200, (path, field, levels, answer.text)
        return
    assert answer.status_code == 400, (path, field, levels, answer.text)
    refusal = answer.json()
    assert f"nested more than {LIMIT} levels deep" in refusal["message"], refusal
    # Past 1,024 levels the reader itself stops, and the body as a whole is named.
    assert refusal["field"] == "body" or refusal["field"].startswith(field), (field, refusal)


@CHECKED
@given(place=st.sampled_from(PASSED_THROUGH), levels=depths, kind=st.sampled_from(["object", "array"]))
def test_passed_through_bodies_of_any_depth_get_upstreams_answer(
    client: httpx.Client, place: tuple[str, str], levels: int, kind: str
) -> None:
    path, template = place
    answer = client.post(path, content=template.replace("X", nested(levels, kind)))
    assert answer.status_code < 500, (path, levels, answer.text)
