"""The on-device engine (``proxy.decisioning``) held to Adobe's engine's own cases, in this process: each
case's request decided from its artifact at its date and geo, the answer and the display notifications
compared with what Adobe's engine is expected to give."""

from __future__ import annotations

import copy

import pytest

from proxy.decisioning.artifact import Artifact, UnsupportedArtifact
from proxy.decisioning.context import allocation, geo_from_headers
from proxy.decisioning.engine import decide
from tests.decisioning.adobe_cases import Case, load, mismatches

CASES = load()
# Cases of what is not decided on device yet, each failing until it is (strict: a pass fails the run).
NOT_YET = {
    "TELEMETRY-sends_telemetry": "telemetry entries on a notification of their own",
}


def marked(case: Case) -> object:
    reason = NOT_YET.get(case.id)
    return pytest.param(case, id=case.id, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])


def test_all_of_adobes_cases_are_here() -> None:
    assert len(CASES) == 66 and len({case.suite for case in CASES}) == 18


@pytest.mark.parametrize("case", [marked(case) for case in CASES])
def test_adobes_case(case: Case) -> None:
    request = copy.deepcopy(case.request)
    if case.geo_headers:  # the edge's geo lookup for the request's address, as the case mocks it
        context = request.setdefault("context", {})
        context["geo"] = {**(context.get("geo") or {}), **geo_from_headers(case.geo_headers)}
    decided = decide(Artifact.parse(case.artifact), case.client, request, case.now_ms, case.session_id)
    errors = mismatches(decided.response, case.output) if case.output is not None else []
    if case.notification is None:
        errors += [f"no notification expected, got {decided.notifications}"] if decided.notifications else []
    elif case.notification is not False:
        sent = {"id": decided.response["id"], "context": request.get("context")}
        if decided.notifications:
            sent["notifications"] = decided.notifications
        errors += mismatches(sent, case.notification["request"], "notification")
    assert not errors, "\n".join(errors)


def test_an_artifact_of_another_major_version_is_refused() -> None:
    for version in ("2.0.0", "0.9", "x"):
        with pytest.raises(UnsupportedArtifact):
            Artifact.parse({"version": version, "rules": {}})
    with pytest.raises(UnsupportedArtifact):
        Artifact.parse(["not", "an", "artifact"])


def test_allocation_is_the_one_of_adobes_python_engine() -> None:
    """MurmurHash3 of ``<client>.<activity>.<visitor>.0`` into 10,000 buckets, against Adobe's own Python
    engine (from its SDK's wheel) for visitors of every kind of id, unicode included."""
    adobe = pytest.importorskip("target_decisioning_engine.allocation_provider")
    visitors = [f"visitor-{n}" for n in range(500)] + ["338e3c1e51f7416a8e1ccba4f81acea0", "Zoë-ß-日本", "x"]
    for visitor in visitors:
        for activity in (125882, 334411, "abc"):
            assert allocation("someClientId", activity, visitor) == adobe.compute_allocation(
                "someClientId", str(activity), visitor
            ), (activity, visitor)
