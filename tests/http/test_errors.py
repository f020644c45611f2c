"""Failures raised below the edge, and the one place that turns them into HTTP answers
(``proxy.http.errors.answer_for``)."""

from __future__ import annotations

import orjson
import pytest

from proxy.failures import BudgetExhausted, SessionBusy
from proxy.http.errors import Answered, ApiError, answer_for
from proxy.upstream import (
    CircuitOpen,
    UpstreamMalformed,
    UpstreamRefused,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)


def refused(status: int, body: object, **headers: str) -> UpstreamRefused:
    return UpstreamRefused(UpstreamResponse(status, headers, orjson.dumps(body)))


@pytest.mark.parametrize(
    ("failure", "status", "retry_after"),
    [
        (UpstreamTimeout("upstream did not answer within 500 ms"), 504, None),
        (UpstreamUnavailable("cannot connect to upstream"), 502, None),
        (UpstreamMalformed("upstream answered malformed JSON"), 502, None),
        (CircuitOpen("upstream demo.tt.omtrdc.net is failing; it is tried again in 7 s", 7), 503, "7"),
        (BudgetExhausted("upstream allows 10 calls a minute: try again in 12 s", 12), 429, "12"),
        (SessionBusy("Too many requests with same session ID"), 420, None),
    ],
)
def test_each_failure_has_its_status_message_and_retry_after(
    failure: Answered, status: int, retry_after: str | None
) -> None:
    answer = answer_for(failure)
    assert (answer.status, answer.message) == (status, str(failure))
    assert (answer.headers or {}).get("Retry-After") == retry_after


def test_a_refusal_passes_on_upstreams_status_message_field_and_retry_after() -> None:
    answer = answer_for(
        refused(400, {"status": 400, "message": "context.channel: must be web"}, **{"retry-after": "3"})
    )
    assert (answer.status, answer.message, answer.field) == (400, "context.channel: must be web", "context.channel")
    assert answer.headers == {"Retry-After": "3"}
    named = answer_for(refused(403, {"message": "not allowed", "field": "client"}))
    assert (named.status, named.field) == (403, "client")


def test_upstreams_own_failure_is_the_gateways_502_and_unavailability_passes_through() -> None:
    broken = answer_for(refused(500, {"message": "boom"}))
    assert (broken.status, broken.message, broken.field) == (502, "upstream answered 500: boom", None)
    assert answer_for(refused(503, "not json")).status == 503
    assert answer_for(UpstreamRefused(UpstreamResponse(504, {}, b"<html>"))).message == "upstream answered 504"


def test_the_edges_own_refusals_are_answered_as_raised() -> None:
    error = ApiError(400, "mbox: required", "mbox")
    assert answer_for(error) is error
