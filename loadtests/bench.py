"""Every performance budget of the gateway, measured in one run, in one table.

    python -m loadtests.bench            # about 8 minutes on a 2-core machine
    python -m loadtests.bench --quick    # a smoke run of a minute or so: checks the report, not the speed

Runs the benchmarks below one after the other (each pins its servers and load generator to cores apart,
and compares with a baseline measured in the same run), then the locust scenarios against a gateway on
the emulator, and writes to loadtests/results (or TARGET_PROXY_BENCH_RESULTS):
report.json, report.md (the table), latency.png, throughput.png, and locust's CSV and HTML.

- bench_hit: cache hits against the bare Starlette echo (requests/s; p99 at the same fixed rate);
- bench_miss: misses against the emulator called directly (requests/s; added median latency);
- bench_upstream_calls: upstream calls per visitor session, and every display counted once;
- bench_memory: bytes of memory per cached visitor-mbox entry with 300-byte content;
- bench_workers: two gateway workers against one.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadtests import bench_hit, bench_memory, bench_miss, bench_upstream_calls, bench_workers, harness

HERE = Path(__file__).resolve().parent
OPERATOR_KEY = "bench-operator-key-0001"


def run_locust(seconds: int, users: int) -> dict[str, Any]:
    """The locust scenarios, headless, against a gateway on the emulator; their figures."""
    env = harness.gateway_env(tempfile.mkdtemp(), client_keys={OPERATOR_KEY: ["profile", "operator"]})
    prefix = harness.RESULTS / "locust"
    with harness.emulator(None, nice=True) as emulator, harness.gateway(emulator.url, "0", env=env) as gateway:
        command = [
            sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
            "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", gateway.url,
            "--csv", str(prefix), "--html", f"{prefix}.html", "--only-summary",
        ]  # fmt: skip
        environment = {"TP_OPERATOR_KEY": OPERATOR_KEY, "TP_WAIT_MIN": "0.05", "TP_WAIT_MAX": "0.2"}
        subprocess.run(
            harness.pinned(command, "1"),
            env={**harness.os.environ, **environment},
            check=False,
            capture_output=True,
            timeout=seconds + 120,
        )
    rows = {}
    with Path(f"{prefix}_stats.csv").open() as handle:
        for row in csv.DictReader(handle):
            rows[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1),
            }
    precise = {}
    with Path(f"{prefix}_precise.csv").open() as handle:
        for row in csv.DictReader(handle):
            precise[row["name"]] = {k: float(v) for k, v in row.items() if k.endswith("_ms")}
    return {"seconds": seconds, "users": users, "stats": rows, "precise_ms": precise}


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((harness.RESULTS / f"{name}.json").read_text()))


def plot(hit: dict[str, Any], workers: dict[str, Any]) -> list[Path]:
    figures = []
    levels = ["p50_ms", "p90_ms", "p99_ms", "p99.9_ms"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for axis, key in zip(axes, ("fixed_half_rate", "fixed_rate"), strict=True):
        data = hit[key]
        for server in ("echo", "hit"):
            axis.plot([lv[:-3] for lv in levels], [data[server][lv] for lv in levels], marker="o", label=server)
        axis.set_yscale("log")
        axis.set_title(f"{data['rate']} requests/s, fixed rate")
        axis.set_ylabel("latency (ms, log scale)")
        axis.legend()
    fig.suptitle("Cache hits against the bare Starlette echo")
    fig.tight_layout()
    figures.append(harness.RESULTS / "latency.png")
    fig.savefig(figures[-1], dpi=110)
    plt.close(fig)

    fig, axis = plt.subplots(figsize=(5, 4))
    bars = [
        ("echo", hit["capacity"]["echo"]["rps"]),
        ("1 worker", workers["one"]["rps"]),
        ("1 on Redis", workers["one_shared"]["rps"]),
        ("2 on Redis", workers["two"]["rps"]),
    ]
    axis.bar([name for name, _ in bars], [value for _, value in bars], color=["#999", "#4a7", "#7b9", "#2a5"])
    axis.set_ylabel("cache hits answered per second")
    axis.set_title("Throughput by workers")
    fig.tight_layout()
    figures.append(harness.RESULTS / "throughput.png")
    fig.savefig(figures[-1], dpi=110)
    plt.close(fig)
    return figures


def table(budgets: list[dict[str, Any]]) -> str:
    lines = ["| budget | measured | budget | result |", "| --- | --- | --- | --- |"]
    for budget in budgets:
        sign = ">=" if budget["at_least"] else "<="
        unit = budget.get("unit", "")
        lines.append(
            f"| {budget['name']} | {budget['measured']:g}{unit} | {sign} {budget['budget']:g}{unit} | "
            f"{'pass' if budget['passed'] else 'short'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: checks the report, not the speed")
    args = parser.parse_args()
    harness.pin_self("1")
    if args.quick:
        bench_hit.measure(visitors=100, seconds=1, connections=8, load=0.1, warmup=0, flush_delay_ms=500)
        bench_miss.measure(seconds=1, connections=8, warmup=0)
        bench_upstream_calls.measure(visitors=10, per_visitor=60, flush_delay_ms=1000)
        bench_memory.measure(visitors=300, settle=0.2)
        bench_workers.measure(visitors=50, seconds=1, connections=8)
        locust = run_locust(seconds=5, users=10)
    else:
        bench_hit.measure(visitors=2000, seconds=10, connections=32, load=0.5, warmup=2)
        bench_miss.measure(seconds=10, connections=32)
        bench_upstream_calls.measure(visitors=200, per_visitor=120)
        bench_memory.measure(visitors=20_000)
        bench_workers.measure(visitors=1000, seconds=10, connections=64)
        locust = run_locust(seconds=30, users=40)

    parts = {
        name: load(name)
        for name in ("bench_hit", "bench_miss", "bench_upstream_calls", "bench_memory", "bench_workers")
    }
    budgets = [budget for part in parts.values() for budget in part["budgets"]]
    figures = plot(parts["bench_hit"], parts["bench_workers"])
    machine = harness.other_load()
    report = {
        "quick": args.quick,
        "budgets": budgets,
        "pass": all(b["passed"] for b in budgets),
        "machine": machine,
        "locust": locust,
        "parts": {name: str(harness.RESULTS / f"{name}.json") for name in parts},
        "figures": [str(path) for path in figures],
    }
    (harness.RESULTS / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = table(budgets)
    (harness.RESULTS / "report.md").write_text(markdown + "\n")
    print()
    print(markdown)
    print(
        f"\nlocust ({locust['users']} users, {locust['seconds']} s): "
        + ", ".join(
            f"{name} {figures['rps']}/s p99 {locust['precise_ms'].get(name, {}).get('p99_ms', '?')} ms"
            for name, figures in locust["stats"].items()
            if name != "Aggregated"
        )
    )
    print(f"machine: {machine}; report: {harness.RESULTS / 'report.json'}")


if __name__ == "__main__":
    main()
