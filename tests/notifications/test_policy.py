"""The one policy both notification pipelines settle upstream answers with, in this process."""

from __future__ import annotations

import orjson
import pytest

from proxy.notifications.policy import Backoff, Verdict, acknowledged_ids, retry_after, settle
from proxy.upstream import UpstreamResponse


def answer(status: int, body: object = b"", headers: dict[str, str] | None = None) -> UpstreamResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return UpstreamResponse(status, headers or {}, raw)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.ACKNOWLEDGED),
        (204, Verdict.ACKNOWLEDGED),
        (400, Verdict.REFUSED),
        (408, Verdict.RETRY),
        (420, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (401, Verdict.DEAD),
        (403, Verdict.DEAD),
        (404, Verdict.DEAD),
        (413, Verdict.DEAD),
    ],
)
def test_each_status_settles_one_way(status: int, verdict: Verdict) -> None:
    assert settle(answer(status, {"message": "why"})).verdict is verdict


def test_the_reason_is_upstreams_message_else_its_status() -> None:
    assert settle(answer(403, {"message": "forbidden here"})).reason == "forbidden here"
    assert settle(answer(503, b"<html>")).reason == "upstream answered 503"
    assert settle(answer(404, {"message": ["not", "text"]})).reason == "upstream answered 404"


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        ({"notifications": [{"id": "a"}, {"id": "b"}]}, {"a", "b"}),
        ({"notifications": [{"id": "a"}, {"no": "id"}, "junk", {"id": 5}]}, {"a"}),
        ({"notifications": None}, set()),
        ({}, set()),
        ([], set()),
        (b"not json", set()),
    ],
)
def test_acknowledged_ids_are_the_answers_string_ids(body: object, ids: set[str]) -> None:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    assert acknowledged_ids(raw) == ids


def test_retry_after_is_read_when_it_is_a_number() -> None:
    assert retry_after(answer(429, headers={"retry-after": "3"})) == 3.0
    assert retry_after(answer(429, headers={"retry-after": "soon"})) is None
    assert retry_after(answer(429)) is None
    assert settle(answer(503, headers={"retry-after": "7"})).retry_after_s == 7.0


def test_the_delay_doubles_up_to_its_cap_jittered_down_to_half() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, max_attempts=10)
    for attempts, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [backoff.delay(attempts) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays), (attempts, min(delays), max(delays))


def test_the_delay_is_never_below_retry_after() -> None:
    assert Backoff(base_s=0.1, cap_s=1.0).delay(1, retry_after_s=30.0) == 30.0


def test_it_gives_up_after_max_attempts() -> None:
    backoff = Backoff(max_attempts=3)
    assert [backoff.gives_up(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
