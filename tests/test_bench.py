"""The benchmark report, in its smoke version: it is produced, complete and sane (not fast: the figures of
a run this short and on a busy test machine mean nothing)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("bench_hit", "bench_miss", "bench_upstream_calls", "bench_memory", "bench_workers")
SCENARIOS = (
    "kiosk: single mbox",
    "tv: batch prefetch",
    "tv: notification",
    "page: delivery",
    "operator: profile fetch",
)


def test_the_quick_benchmark_writes_a_sane_report(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--quick"],
        cwd=ROOT,
        env={**os.environ, "TARGET_PROXY_BENCH_RESULTS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())

    names = {budget["name"] for budget in report["budgets"]}
    for wanted in (
        "hit requests/s vs echo",
        "miss requests/s vs the emulator's",
        "added median latency",
        "upstream calls per visitor session",
        "RSS per cached visitor-mbox entry (300-byte content)",
        "two workers vs one (hit requests/s)",
        "one worker on the local Redis vs one in memory (informational)",
    ):
        assert wanted in names
    assert any(name.startswith("hit p99 vs echo p99") for name in names)
    for budget in report["budgets"]:
        assert math.isfinite(budget["measured"]) and budget["measured"] >= 0, budget
        assert budget["passed"] == (
            budget["measured"] >= budget["budget"] if budget["at_least"] else budget["measured"] <= budget["budget"]
        )

    by_name = {budget["name"]: budget for budget in report["budgets"]}
    # What the run must get right whatever the speed: every view answered and counted once upstream.
    assert by_name["hit rate of the measured requests"]["passed"]
    assert by_name["emulator impressions per view served"]["measured"] == 1
    assert by_name["duplicate notifications"]["measured"] == 0
    assert by_name["notifications left in the queue"]["measured"] == 0
    assert 0 < by_name["RSS per cached visitor-mbox entry (300-byte content)"]["measured"] < 100_000

    for part in PARTS:
        assert json.loads((tmp_path / f"{part}.json").read_text())["budgets"]
    for figure in ("latency.png", "throughput.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| budget | measured | budget | result |" in (tmp_path / "report.md").read_text()

    stats = report["locust"]["stats"]
    for scenario in SCENARIOS:
        assert stats[scenario]["requests"] > 0, scenario
        assert stats[scenario]["failures"] == 0, scenario
        # Percentiles to the microsecond, not rounded to whole milliseconds.
        assert report["locust"]["precise_ms"][scenario]["p50_ms"] > 0
    assert (tmp_path / "locust.html").exists()


def test_the_quick_sdk_benchmark_counts_sdk_shaped_views_as_hits_and_delivers_their_telemetry(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "loadtests.bench_sdk", "--quick"],
        cwd=ROOT,
        env={**os.environ, "TARGET_PROXY_BENCH_RESULTS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "bench_sdk.json").read_text())
    by_name = {budget["name"]: budget for budget in report["budgets"]}
    # Whatever the speed: every SDK-shaped view a hit as a plain one is, and every entry delivered.
    assert by_name["SDK-shaped hit rate vs plain"]["passed"]
    assert by_name["SDK-shaped views answered 200"]["passed"]
    assert by_name["telemetry entries at the emulator per entry sent"]["passed"]
    assert all(r["hit_rate"] == 1 for kind in ("plain", "sdk") for r in report["runs"][kind])


def test_the_on_device_benchmark_runs_and_reports_each_kind() -> None:
    """``loadtests/bench_on_device.py`` in one short round: server-side misses, hits of each API (counted
    as hits by the gateway) and on-device misses were each answered (none failed: the benchmark stops on
    any) and measured."""
    run = subprocess.run(
        [sys.executable, "-m", "loadtests.bench_on_device", "--rounds", "1", "--visitors", "100", "--seconds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = dict(
        part.strip().rsplit(" ", 1) for part in run.stdout.split("round 1: ", 1)[1].splitlines()[0].split(",")
    )
    kinds = (
        *("server_side_miss_us", "hit_us", "delivery_hit_us", "on_device_miss_us"),
        *("hits_per_s", "delivery_hits_per_s", "on_device_per_s"),
    )
    assert all(float(figures[kind]) > 0 for kind in kinds), figures
    assert "Delivery API hits/s over on-device misses/s" in run.stdout
