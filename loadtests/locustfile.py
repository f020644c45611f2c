"""Realistic load on a gateway (or on Target itself): kiosks, connected TVs, backend pages and operators.

    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 60s --host http://127.0.0.1:8080 \\
        --csv loadtests/results/locust --html loadtests/results/locust.html

Tuned by environment variables (defaults in brackets):
    TP_CLIENT [demo]                 Target client code
    TP_MBOXES [the demo catalog's]   comma-separated mbox names the users view
    TP_KIOSK_MBOXES [3]              mboxes a kiosk rotates through
    TP_CLICK_SHARE [0.05]            share of kiosk and TV views followed by a click
    TP_PAGE_MBOXES [4]               mboxes per backend page (Delivery API)
    TP_VISITORS [10000]              distinct visitors of the backend pages
    TP_WAIT_MIN / TP_WAIT_MAX [0.5/2] seconds between a user's requests (kiosks and TVs)
    TP_OPERATOR_KEY [unset]          a gateway client key with the profile scope; without it operators only read
    TP_PRECISE_CSV [unset]           where to write percentiles to the microsecond (see below)

Locust rounds its percentiles to whole milliseconds, which says nothing of answers that take a fraction
of one; every response time is therefore also kept here at full precision, and written per request
name to TP_PRECISE_CSV (or beside --csv as <prefix>_precise.csv) when the run stops.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
import time
import uuid
from collections import defaultdict
from typing import Any

from locust import HttpUser, between, constant_pacing, events, task

CLIENT = os.environ.get("TP_CLIENT", "demo")
MBOXES = os.environ.get(
    "TP_MBOXES", "home-hero,home-banner,product-reco,kiosk-welcome,tv-rail-1,tv-rail-2,checkout-promo"
).split(",")
KIOSK_MBOXES = int(os.environ.get("TP_KIOSK_MBOXES", "3"))
CLICK_SHARE = float(os.environ.get("TP_CLICK_SHARE", "0.05"))
PAGE_MBOXES = int(os.environ.get("TP_PAGE_MBOXES", "4"))
VISITORS = int(os.environ.get("TP_VISITORS", "10000"))
WAIT = between(float(os.environ.get("TP_WAIT_MIN", "0.5")), float(os.environ.get("TP_WAIT_MAX", "2")))
OPERATOR_KEY = os.environ.get("TP_OPERATOR_KEY")
JSON = {"Content-Type": "application/json"}

# Response times at full precision, per request name, kept for the run (bounded: a reservoir sample).
RESERVOIR = 200_000
_times: dict[str, list[float]] = defaultdict(list)
_seen: dict[str, int] = defaultdict(int)


@events.request.add_listener
def keep_precise(name: str, response_time: float, exception: BaseException | None, **_: Any) -> None:
    if exception is not None:
        return
    _seen[name] += 1
    kept = _times[name]
    if len(kept) < RESERVOIR:
        kept.append(response_time)
    else:
        slot = random.randrange(_seen[name])
        if slot < RESERVOIR:
            kept[slot] = response_time


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@events.quitting.add_listener
def write_precise(environment: Any, **_: Any) -> None:
    path = os.environ.get("TP_PRECISE_CSV")
    prefix = getattr(environment.parsed_options, "csv_prefix", None) if environment.parsed_options else None
    if not path and prefix:
        path = f"{prefix}_precise.csv"
    if not path:
        return
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "requests", "p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms"])
        for name, values in sorted(_times.items()):
            if values:
                writer.writerow(
                    [
                        name,
                        _seen[name],
                        *(f"{percentile(values, s):.3f}" for s in (0.5, 0.9, 0.99, 0.999)),
                        f"{max(values):.3f}",
                    ]
                )


class Kiosk(HttpUser):
    """One in-store screen: one visitor, single mbox views of a few mboxes in rotation, a click now and then."""

    weight = 4
    wait_time = WAIT

    def on_start(self) -> None:
        self.visitor = f"kiosk-{uuid.uuid4().hex[:12]}"
        self.rotation = itertools.cycle(random.sample(MBOXES, min(KIOSK_MBOXES, len(MBOXES))))

    def view(self, mbox: str, **extra: Any) -> None:
        self.client.post(
            f"/rest/v1/mbox?client={CLIENT}",
            json={"mbox": mbox, "thirdPartyId": self.visitor, **extra},
            name="kiosk: single mbox" if not extra else "kiosk: click",
        )

    @task
    def show_next(self) -> None:
        mbox = next(self.rotation)
        self.view(mbox)
        if random.random() < CLICK_SHARE:
            self.view(mbox, clicked=True)


class ConnectedTV(HttpUser):
    """A TV app: one batch call that prefetches its rails, then a display notification per rail shown."""

    weight = 2
    wait_time = WAIT

    def on_start(self) -> None:
        self.visitor = f"tv-{uuid.uuid4().hex[:12]}"
        self.tokens: dict[str, list[str]] = {}
        self.prefetch()

    def prefetch(self) -> None:
        body = {
            "client": CLIENT,
            "id": {"thirdPartyId": self.visitor},
            "prefetch": [{"indexId": i, "mbox": mbox} for i, mbox in enumerate(MBOXES)],
        }
        with self.client.post("/rest/v2/batchmbox", json=body, name="tv: batch prefetch", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            for answer in r.json().get("prefetchResponses", []):
                if answer.get("eventTokens"):
                    self.tokens[answer["mbox"]] = answer["eventTokens"]

    @task(10)
    def show_rail(self) -> None:
        if not self.tokens:
            self.prefetch()
            return
        mbox, tokens = random.choice(list(self.tokens.items()))
        note = {"timestamp": int(time.time() * 1000), "mbox": mbox, "eventTokens": tokens}
        if random.random() < CLICK_SHARE:
            note["mbox"] = f"{mbox}-clicked"
        body = {"client": CLIENT, "id": {"thirdPartyId": self.visitor}, "notifications": [note]}
        self.client.post("/rest/v2/batchmbox", json=body, name="tv: notification")

    @task(1)
    def new_session(self) -> None:
        self.prefetch()


class BackendPage(HttpUser):
    """A server rendering pages: a Delivery API call with several mboxes for each page, many visitors."""

    weight = 3
    wait_time = constant_pacing(0.2)

    @task
    def render(self) -> None:
        visitor = f"shopper-{random.randrange(VISITORS)}"
        mboxes = random.sample(MBOXES, min(PAGE_MBOXES, len(MBOXES)))
        body = {
            "id": {"thirdPartyId": visitor},
            "context": {"channel": "web", "address": {"url": "https://shop.example.com/"}},
            "execute": {"mboxes": [{"index": i, "name": mbox} for i, mbox in enumerate(mboxes)]},
        }
        self.client.post(
            f"/rest/v1/delivery?client={CLIENT}&sessionId={visitor}", json=body, headers=JSON, name="page: delivery"
        )


class Operator(HttpUser):
    """A back office: profile reads and, with a key, updates, within the profile APIs' pace."""

    weight = 1
    wait_time = constant_pacing(1.2)  # the bulk and admin APIs take 50 calls a minute

    @task(3)
    def read_profile(self) -> None:
        visitor = f"shopper-{random.randrange(VISITORS)}"
        with self.client.get(
            f"/rest/v1/profiles/thirdPartyId/{visitor}?client={CLIENT}",
            name="operator: profile fetch",
            catch_response=True,
        ) as response:
            if response.status_code in (200, 404):  # a visitor who never came has no profile
                response.success()

    @task(1)
    def update_profile(self) -> None:
        if not OPERATOR_KEY:
            return
        visitor = f"shopper-{random.randrange(VISITORS)}"
        self.client.get(
            f"/m2/{CLIENT}/profile/update?mbox3rdPartyId={visitor}&profile.segment=loyal",
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
            name="operator: profile update",
        )
