"""The gateway of two source trees side by side, in one run: the CPU time it spends per cache hit and per
miss, and the hits it answers per second, each tree measured in alternating rounds on the same machine.

    python -m loadtests.bench_trees BASE_REVISION [--rounds 4] [--visitors 1000] [--seconds 5]
    python -m loadtests.bench_trees BASE_REVISION --in-process [--rounds 6]
    python -m loadtests.bench_trees BASE_REVISION --instructions

The base tree is exported from git (``git archive``) next to this one and run with this tree's
environment (``python -m proxy`` from that tree's folder). Each round starts the gateway of each tree in
turn on core 0 (the emulator, wrk and this process share core 1): ``visitors`` new visitors each cost one
miss (single mbox API, one upstream call that prefetches the demo group), then wrk sends their cached
views for ``seconds``. The gateway's user and system CPU time over the misses and over the hits, divided
by the requests answered, is less disturbed by the other processes than requests per second; both are
reported, as medians over the rounds, with the ratio of this tree to the base. Every round starts a
fresh gateway: the same visitors miss first in each.

``--in-process``: each tree's application alone, driven through its ASGI entry point in a process of its
own on core 0 (``loadtests.app_hits``: no HTTP server, no load generator, nothing else running while it is
timed), the fastest of its repeats a round; on a machine shared with other work this tells the trees' own
code apart when requests per second and the server's CPU time vary by more than the difference.

``--instructions``: counted rather than timed, the machine instructions a hit executes in each tree's
application (``loadtests.app_hits`` under valgrind's callgrind, 200 visitors, each run on an emulator of
its own started fresh): those of four repeats less those of one, over the 2,400 hits between. The count
is the same from one run to the next, whatever else the machine does; it leaves out what memory costs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import uvloop

from loadtests import harness, loadgen
from loadtests.bench_hit import view, wrk_script

ROOT = Path(__file__).resolve().parent.parent


def export(revision: str) -> Path:
    """The tree at ``revision``, in a folder of its own."""
    folder = Path(tempfile.mkdtemp(prefix=f"target-proxy-{revision[:12]}-"))
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def one_round(tree: Path, emulator: harness.Server, visitors: int, seconds: float) -> dict[str, float]:
    """CPU microseconds per miss and per hit, and hits per second, of the gateway from ``tree``."""
    env = harness.gateway_env(tempfile.mkdtemp(), notification_max_delay_ms=1000)
    group = harness.PREFETCH_GROUP
    with harness.gateway(emulator.url, "0", env=env, cwd=tree) as gateway:
        requests = [view(gateway.url, v, group[v % len(group)]) for v in range(visitors)]
        before = gateway.cpu_seconds()
        answers = uvloop.run(loadgen.send_all(gateway.url, requests, concurrency=16))
        missed = gateway.cpu_seconds()
        if any(status != 200 for status, _ in answers):
            raise RuntimeError(f"a miss failed on the gateway from {tree}")
        hits = harness.wrk(gateway.url, wrk_script(visitors), seconds=seconds, connections=32, core="1")
        hit = gateway.cpu_seconds()
        if hits.non_2xx or hits.errors:
            raise RuntimeError(f"{hits.non_2xx + hits.errors} failed hits on the gateway from {tree}")
        cache = harness.operator(gateway, "cache")
    return {
        "miss_us": (missed - before) / visitors * 1e6,
        "hit_us": (hit - missed) / hits.requests * 1e6,
        "hits_per_s": hits.rps,
        "hit_rate": float(cache.get("hitRate", 0.0)),
    }


def in_process_round(tree: Path, emulator: harness.Server) -> dict[str, float]:
    """CPU microseconds per hit of the application of ``tree`` alone (``loadtests.app_hits``)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = ["taskset", "-c", "0", sys.executable, str(ROOT / "loadtests" / "app_hits.py"), emulator.url]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    if not result["tree"].startswith(str(tree)):
        raise RuntimeError(f"measured {result['tree']}, not the tree in {tree}")
    return {"app_hit_us": float(result["hit_us"])}


def instructions_per_hit(tree: Path, visitors: int = 200) -> float:
    """Machine instructions per hit of the application of ``tree`` (``--instructions``)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    counted = []
    for repeats in (1, 4):
        with harness.emulator(core="1") as emulator:
            command = [
                *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable),
                *(str(ROOT / "loadtests" / "app_hits.py"), emulator.url),
                *("--repeats", str(repeats), "--visitors", str(visitors)),
            ]
            done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=1200)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind of the tree in {tree} failed: {done.stderr[-2000:]}")
        counted.append(int(found.group(1)))
    return (counted[1] - counted[0]) / (3 * 4 * visitors)  # three repeats more, of 4 views per visitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the git revision to compare this tree with")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--in-process", action="store_true", help="each tree's application alone, no HTTP")
    parser.add_argument("--instructions", action="store_true", help="instructions per hit, counted by callgrind")
    args = parser.parse_args()
    harness.pin_self("1")
    trees = {"base": export(args.base), "this": ROOT}
    if args.instructions:
        counts = {name: instructions_per_hit(tree) for name, tree in trees.items()}
        print(f"base {args.base} against this tree, machine instructions per hit (callgrind):")
        base, this = counts["base"], counts["this"]
        print(f"  base {base:,.0f}  this {this:,.0f}  this/base {this / base:.3f}")
        return
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with harness.emulator(core="1") as emulator:
        for number in range(args.rounds):
            order = list(trees) if number % 2 == 0 else list(reversed(trees))
            for name in order:
                if args.in_process:
                    rounds[name].append(in_process_round(trees[name], emulator))
                else:
                    rounds[name].append(one_round(trees[name], emulator, args.visitors, args.seconds))
                print(name, {k: round(v, 3) for k, v in rounds[name][-1].items()}, flush=True)
    print(f"\nbase {args.base} against this tree, medians of {args.rounds} rounds:")
    for figure in ("app_hit_us",) if args.in_process else ("hit_us", "miss_us", "hits_per_s"):
        base = statistics.median(r[figure] for r in rounds["base"])
        this = statistics.median(r[figure] for r in rounds["this"])
        print(f"  {figure:11s} base {base:10.1f}  this {this:10.1f}  this/base {this / base:.3f}")


if __name__ == "__main__":
    main()
