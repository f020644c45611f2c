"""Memory per cached visitor-mbox entry, with offers of 300 bytes of content.

    python -m loadtests.bench_memory [--visitors 20000] [--quick]

The emulator serves a copy of the demo catalog whose offers all carry 300 bytes of HTML. Each visitor
makes one single mbox request: a miss that prefetches the seven mboxes of ``harness.PREFETCH_GROUP``, so
the cache gains seven entries per visitor. The same traffic then goes to a second, fresh gateway whose
cache may hold a single visitor (cache_max_entries=1): same sessions, same upstream calls and answers,
same parsing, but (almost) no entries kept. Bytes per entry = (the first gateway's RSS growth - the
second's) / (the first's entries - the second's). Budget (DESIGN.md, "Performance budgets"): <= 1.5 KB
per entry. The cache's own byte accounting (/_proxy/cache) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import uvloop

from loadtests import harness, loadgen
from loadtests.harness import Budget

CONTENT_BYTES = 300
FILLER = "Seasonal offer for returning visitors: free delivery, easy returns and member prices. "


def catalog(directory: Path) -> Path:
    """The demo catalog with every offer's content replaced by exactly 300 bytes of HTML (no characters
    that JSON would escape, so 300 bytes is also what the cache stores)."""
    data = json.loads(resources.files("proxy.emulator").joinpath("demo_catalog.json").read_text())
    for offer in data["offers"]:
        head, tail = f"<div id=offer-{offer['id']}>", "</div>"
        body = (FILLER * 10)[: CONTENT_BYTES - len(head) - len(tail)]
        offer["type"], offer["content"] = "content", head + body + tail
        assert len(offer["content"].encode()) == CONTENT_BYTES
    path = directory / "catalog-300.json"
    path.write_text(json.dumps(data))
    return path


def rss(server: harness.Server, settle: float) -> int:
    """Resident memory once the process has settled: the median of a few readings."""
    time.sleep(settle)
    readings = []
    for _ in range(5):
        readings.append(server.rss_bytes())
        time.sleep(0.1)
    return sorted(readings)[len(readings) // 2]


def fill(
    emulator: harness.Server, directory: Path, visitors: int, prefix: str, settle: float, **settings: object
) -> dict[str, Any]:
    """A fresh gateway given one miss per visitor; its RSS before and after, and its cache figures."""
    env = harness.gateway_env(directory / prefix, **settings)
    group = harness.PREFETCH_GROUP
    with harness.gateway(emulator.url, "0", env=env) as gateway:
        body = '{"mbox":"%s","thirdPartyId":"' + prefix + '-%07d"}'
        requests = [
            loadgen.post(gateway.url, harness.SINGLE_MBOX_PATH, (body % (group[v % len(group)], v)).encode())
            for v in range(visitors)
        ]
        before = rss(gateway, settle)
        started = time.monotonic()
        answers = uvloop.run(loadgen.send_all(gateway.url, requests))
        seconds = time.monotonic() - started
        after = rss(gateway, settle)
        cache = harness.operator(gateway, "cache")
    failed = sum(1 for status, _ in answers if status != 200)
    if failed:
        raise RuntimeError(f"{failed} of {visitors} requests failed")
    return {"rss_before": before, "rss_after": after, "growth": after - before, "seconds": seconds, "cache": cache}


def measure(visitors: int, settle: float = 1.0) -> None:
    directory = Path(tempfile.mkdtemp())
    entries_wanted = visitors * len(harness.PREFETCH_GROUP)
    try:
        with harness.emulator("1", "--catalog", str(catalog(directory))) as emulator:
            cached = fill(
                emulator,
                directory,
                visitors,
                "cached",
                settle,
                cache_max_entries=entries_wanted,
                cache_max_bytes=4 * 1024**3,
            )
            # "uncach" is as long as "cached": both gateways keep visitor ids of the same size.
            baseline = fill(emulator, directory, visitors, "uncach", settle, cache_max_entries=1)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    entries = int(cached["cache"]["entries"]) - int(baseline["cache"]["entries"])
    per_entry = (cached["growth"] - baseline["growth"]) / max(entries, 1)
    accounted = int(cached["cache"]["bytes"]) / max(int(cached["cache"]["entries"]), 1)
    budgets = [
        Budget("RSS per cached visitor-mbox entry (300-byte content)", round(per_entry), 1536, False, " B"),
        Budget("entries cached", int(cached["cache"]["entries"]), entries_wanted, True),
        Budget("evictions", int(cached["cache"]["evictions"]), 0, False),
    ]
    mb = 1024 * 1024
    print(
        f"{visitors} visitors: cached gateway RSS {cached['rss_before'] / mb:.1f} -> {cached['rss_after'] / mb:.1f} MB "
        f"({cached['cache']['entries']} entries, {cached['seconds']:.1f} s); baseline (cache of one visitor) "
        f"{baseline['rss_before'] / mb:.1f} -> {baseline['rss_after'] / mb:.1f} MB ({baseline['cache']['entries']} "
        f"entries); {per_entry:.0f} B per entry measured, {accounted:.0f} B per entry by the cache's own accounting "
        f"({int(cached['cache']['bytes']) / mb:.1f} MB for {cached['cache']['entries']} entries)"
    )
    harness.report(
        "bench_memory",
        budgets,
        {
            "settings": {"visitors": visitors, "content_bytes": CONTENT_BYTES},
            "bytes_per_entry": round(per_entry),
            "accounted_bytes_per_entry": round(accounted),
            "cached": cached,
            "baseline": baseline,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="a few seconds: a smoke test, too small to measure")
    args = parser.parse_args()
    harness.pin_self("1")
    if args.quick:
        measure(1000, settle=0.2)
    else:
        measure(args.visitors)


if __name__ == "__main__":
    main()
