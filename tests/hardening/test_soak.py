"""The soak of loadtests/soak.py in its short version: about twenty seconds at 80% of the gateway's measured
capacity, with a different fault on the edge every seven seconds, bounds small enough to be reached and a
hostile client beside the load (``loadtests/hostile.py``).

Speed is not asserted (the figures of a run this short on a busy machine mean little); what the gateway
must get right whatever the speed is: no answer beyond those the faults allow, every display counted once,
RSS under the bound derived from the gateway's own bounds, made-up notifications dead-lettered once at a
bounded cost, lingering connections closed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from loadtests import harness, soak

SHORT = [
    "--duration", "22",
    "--fault-every", "7",
    "--fault-seconds", "1.5",
    "--faults", "latency,errors,outage",
    "--capacity-seconds", "3",
    "--regulars", "300",
    "--connections", "64",
    "--upstream-timeout-ms", "1000",
    "--circuit-reset-seconds", "1",
    "--cache-max-entries", "3000",
    "--session-max-visitors", "1500",
    "--notification-max-delay-ms", "1000",
    "--notification-retry-cap-ms", "1000",
    "--header-timeout-seconds", "3",
    "--hostile-every", "0.5",
    # A run this short is all ramp: its growth says nothing about a plateau (the full soak checks that).
    "--growth-budget-mb", "1000",
]  # fmt: skip


@pytest.mark.timeout(90)
def test_a_short_soak_with_faults_keeps_its_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    affinity = os.sched_getaffinity(0)
    try:
        soak.main(SHORT)
    finally:
        os.sched_setaffinity(0, affinity)  # the soak pins this process to the load generator's core
    report = json.loads((tmp_path / "soak.json").read_text())
    budgets = {budget["name"]: budget for budget in report["budgets"]}

    # Three faults, each felt: the gateway answered some of the views in its window with an error.
    windows = report["windows"]
    assert [w["fault"] for w in windows] == ["latency spike", "5xx burst", "outage"]
    for window in windows:
        assert set(window["statuses"]) - {"200"}, window

    # Every answer outside the windows was 200 with content, every one inside was allowed: exactly.
    assert report["unexpected"] == {}, report["unexpected_examples"]
    assert budgets["unexpected errors"]["passed"]
    assert report["answers"]["steady"] and set(report["answers"]["steady"]) == {"200"}

    # Every display counted by the edge, once.
    displays = report["displays"]
    assert displays["queued_total"] > 0
    assert displays["counted_total"] == displays["queued_total"]
    for name in (
        "displays queued, not counted by the edge",
        "displays counted more than once",
        "views answered with content, not counted upstream",
        "notifications left in the queue after the drain",
        "notifications dead-lettered, other than made-up ones",
    ):
        assert budgets[name]["passed"], budgets[name]

    # Beside the load, a hostile client: made-up notifications, each acknowledged, then dead-lettered once,
    # at no more upstream calls than the refusal budget; connections that linger after their answer, closed.
    made_up = report["hostile"]
    assert made_up["made_up_acknowledged"] > 0 and made_up["lingering_connections"] > 0, made_up
    for name in (
        "made-up notifications acknowledged, not dead-lettered",
        "made-up notifications dead-lettered more than once",
        "hostile requests not answered 200",
        "upstream calls spent on refused notifications (budget: the refusal budget of the run's minutes)",
        "lingering connections open past header_timeout_seconds + 2 s",
    ):
        assert budgets[name]["passed"], (budgets[name], made_up)

    # Memory within its bound, with the bounds reached: the cache evicted and held at most its entries.
    peak = budgets["gateway RSS peak (bound from its cache, session and backlog bounds)"]
    assert peak["passed"], report["memory"]
    assert report["gateway"]["cache"]["evictions"] > 0
    assert report["memory"]["peak_cache_entries"] <= 3000
    assert report["memory"]["peak_sessions"] <= 1500
