"""Telemetry entries that Adobe's SDKs put on their requests (``telemetry.entries``: the timings of their
previous calls), carried upstream without costing a call of their own.

A view the cache answers sends nothing upstream at once: its entries ride on the display notification it
queues (durable as that notification is), and go upstream with the visitor's next notification batch, in
its ``telemetry.entries``, as Target takes them on any Delivery API request. A miss sends them with the
view itself. At most ``MAX_ENTRIES`` go with one request (the latest); the rest are dropped, and counted.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from prometheus_client import Counter

# The private field of a queued notification that holds the entries riding on it (never sent as such).
RIDING = "_telemetry"
RIDING_BYTES = b'"_telemetry"'
MAX_ENTRIES = 50


# Counted as they happen, in the registry that /metrics serves (proxy.ops.metrics).
ENTRIES = Counter(
    "target_proxy_telemetry_entries_total",
    "SDK telemetry entries by outcome: forwarded (sent upstream with a view or a notification batch), dropped "
    "(over the bound of one request).",
    ["outcome"],
)
DROPPED = ENTRIES.labels("dropped")
FORWARDED = ENTRIES.labels("forwarded")


def entries_of(body: dict[str, Any]) -> list[Any]:
    telemetry = body.get("telemetry")
    entries = telemetry.get("entries") if isinstance(telemetry, dict) else None
    return entries if isinstance(entries, list) else []


def bounded(entries: list[Any]) -> list[Any]:
    """The latest ``MAX_ENTRIES``; the others are counted as dropped."""
    if len(entries) > MAX_ENTRIES:
        DROPPED.inc(len(entries) - MAX_ENTRIES)
        return entries[-MAX_ENTRIES:]
    return entries


def ride(notification: dict[str, Any], entries: list[Any]) -> dict[str, Any]:
    """The notification carrying ``entries`` upstream."""
    return {**notification, RIDING: bounded(entries)}


def ride_on_first(notes: list[dict[str, Any]], body: dict[str, Any]) -> bool:
    """Put the entries of ``body`` on the first of ``notes`` (in place); False when there are entries and
    no notification to carry them."""
    return carry(notes, entries_of(body))


def carry(notes: list[dict[str, Any]], entries: list[Any]) -> bool:
    """Put ``entries`` on the first of ``notes`` (in place); False when there are entries and no
    notification to carry them."""
    if not entries:
        return True
    if not notes:
        return False
    notes[0] = ride(notes[0], entries)
    return True


def on_device_entry(answer: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The telemetry of a request decided on device, as Adobe's SDKs report one (``mode: local``)."""
    features: dict[str, Any] = {"decisioningMethod": "on-device"}
    for mode, key in (("execute", "executeMboxCount"), ("prefetch", "prefetchMboxCount")):
        count = len((request.get(mode) or {}).get("mboxes") or ())
        if count:
            features[key] = count
    return {
        "requestId": answer.get("requestId"),
        "timestamp": int(time.time() * 1000),
        "mode": "local",
        "features": features,
    }


def forwarded(entries: list[Any]) -> None:
    if entries:
        FORWARDED.inc(len(entries))


def notification_batch(ids_json: bytes, payloads: list[bytes]) -> dict[str, Any]:
    """The Delivery API request that sends a visitor's notifications, with the telemetry riding on them."""
    return with_notifications({"id": orjson.Fragment(ids_json), "context": {"channel": "web"}}, payloads)


def with_notifications(request: dict[str, Any], payloads: list[bytes]) -> dict[str, Any]:
    """``request`` with queued notifications added (a batch of the flusher's, or riders on a miss), and
    the telemetry riding on them in its ``telemetry.entries`` after the request's own."""
    notes: list[Any] = list(request.get("notifications") or [])
    entries: list[Any] = []
    for payload in payloads:
        if RIDING_BYTES in payload:
            note = orjson.loads(payload)
            entries.extend(note.pop(RIDING, None) or [])
            notes.append(note)
        else:
            notes.append(orjson.Fragment(payload))
    request = {**request, "notifications": notes}
    if entries:
        kept = bounded(entries_of(request) + entries)
        request["telemetry"] = {"entries": kept}
        forwarded(kept[-len(entries) :])  # the request's own entries were counted where it was made
    return request
