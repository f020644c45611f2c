"""Adobe's engine's own cases through the gateway's real HTTP path: a gateway deciding on device from the
case's artifact (a file), at the case's date, answers the case's Delivery API request on a loopback socket;
its answer is the case's expected one, and the display notifications it queued (durably, before answering)
are the ones Adobe's engine is expected to send. Nothing reaches the edge for any of it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.decisioning.context import geo_from_headers
from proxy.notifications.log import stored
from tests.decisioning.adobe_cases import Case, load, mismatches
from tests.decisioning.test_engine import NOT_YET
from tests.inprocess import serving_many
from tests.servers import ServerProcess

CASES = load()


class Clock:
    """The wall clock decisions are made at: each case's own date."""

    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> float:
        return self.ms / 1000


class OnDevice:
    """One gateway deciding on device from one artifact, on a loopback socket."""

    def __init__(self, url: str, app: Any, clock: Clock, store: Path) -> None:
        self.url = url
        self.app = app
        self.clock = clock
        self.store = store

    def queued(self) -> list[dict[str, Any]]:
        return [record["p"] for record in stored(self.store)]


@pytest.fixture(scope="module")
def gateways(
    tmp_path_factory: pytest.TempPathFactory, emulator_process: ServerProcess
) -> Iterator[Callable[[Case], OnDevice]]:
    """A gateway of its own for each case, deciding from the case's artifact (a visitor's first view is
    decided: cases share visitors, and a later case must not be answered from what an earlier prefetched
    into the cache)."""
    from proxy.app import create_app
    from proxy.settings import Settings

    with serving_many() as serve:

        def gateway(case: Case) -> OnDevice:
            root = tmp_path_factory.mktemp("on-device")
            artifact = root / "rules.json"
            artifact.write_text(json.dumps(case.artifact))
            clock = Clock()
            settings = Settings(
                upstream=emulator_process.url,
                client=case.client,
                notification_store=root / "notifications",
                notification_max_delay_ms=3_600_000,  # queued, not sent: the test reads them
                shutdown_grace_seconds=0,  # and leaves them there (the emulator issued none of their tokens)
                access_log=False,
                decisioning_method="on-device",
                decisioning_artifact=str(artifact),
            )
            app = create_app(settings, wall_clock=clock)
            return OnDevice(serve(app), app, clock, root / "notifications")

        yield gateway


def marked(case: Case) -> object:
    reason = NOT_YET.get(case.id)
    return pytest.param(case, id=case.id, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])


@pytest.mark.parametrize("case", [marked(case) for case in CASES])
def test_adobes_case_through_the_gateway(
    case: Case, gateways: Callable[[Case], OnDevice], emulator: httpx.Client
) -> None:
    gateway = gateways(case)
    gateway.clock.ms = case.now_ms
    request = copy.deepcopy(case.request)
    if case.geo_headers:  # the edge's geo lookup for the request's address, as the case mocks it
        context = request.setdefault("context", {})
        context["geo"] = {**(context.get("geo") or {}), **geo_from_headers(case.geo_headers)}
    before = {note["id"] for note in gateway.queued()}
    calls = emulator.get("/_emulator/stats").json()["requests"]
    query: dict[str, str] = {"client": case.client}
    if case.session_id:
        query["sessionId"] = case.session_id
    answer = httpx.post(f"{gateway.url}/rest/v1/delivery", params=query, json=request, timeout=10)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    errors = mismatches(document, case.output) if case.output is not None else []
    queued = [note for note in gateway.queued() if note["id"] not in before]
    if case.notification is None:
        errors += [f"no notification expected, queued {queued}"] if queued else []
    elif case.notification is not False:
        expected = case.notification["request"]
        sent: dict[str, Any] = {"id": document["id"], "context": request.get("context")}
        if queued:
            sent["notifications"] = queued
        errors += mismatches(sent, expected, "sent")
    assert not errors, "\n".join(errors)
    assert emulator.get("/_emulator/stats").json()["requests"] == calls, "decided on device: no call upstream"
