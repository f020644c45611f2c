"""Moving content between the three delivery APIs and the cache.

A single mbox request that misses becomes one Delivery API call that executes the asked mbox and
prefetches the visitor's other known mboxes; its answer is written back in the single mbox API's
shape, and its prefetched mboxes become cache entries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from proxy.content.cache import CachedMbox

WEB_CONTEXT = {"channel": "web"}


def fingerprint(*parts: Any) -> str:
    """A stable digest of the request context a decision depended on."""
    return hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


NO_CONTEXT = "-"


def single_context(body: dict[str, Any]) -> str:
    """The context of a single mbox request: its mbox parameters and where it comes from."""
    location = body.get("requestLocation") or {}
    if not location and not body.get("mboxParameters"):
        return NO_CONTEXT  # a device that sends only its identity: the common case, kept cheap
    return fingerprint(
        body.get("mboxParameters") or {},
        location.get("pageURL"),
        location.get("referrerURL"),
        location.get("ipAddress"),
        location.get("host"),
    )


def single_to_delivery(body: dict[str, Any], ids: dict[str, str], prefetch: list[str]) -> dict[str, Any]:
    """The Delivery API request for a single mbox request, prefetching ``prefetch`` beside it."""
    location = body.get("requestLocation") or {}
    context: dict[str, Any] = dict(WEB_CONTEXT)
    address = {k: v for k, v in (("url", location.get("pageURL")), ("referringUrl", location.get("referrerURL"))) if v}
    if address:
        context["address"] = address
    if location.get("ipAddress"):
        context["geo"] = {"ipAddress": location["ipAddress"]}
    parameters = {str(k): str(v) for k, v in (body.get("mboxParameters") or {}).items()}
    executed: dict[str, Any] = {"index": 0, "name": body["mbox"]}
    if parameters:
        executed["parameters"] = parameters
    if body.get("profileParameters"):
        executed["profileParameters"] = {str(k): str(v) for k, v in body["profileParameters"].items()}
    if body.get("order"):
        executed["order"] = delivery_order(body["order"])
    request: dict[str, Any] = {"id": ids, "context": context, "execute": {"mboxes": [executed]}}
    if location.get("impressionId"):
        request["impressionId"] = str(location["impressionId"])
    if prefetch:
        request["prefetch"] = {"mboxes": prefetch_entries(prefetch, parameters)}
    return request


def prefetch_entries(names: Iterable[str], parameters: dict[str, str] | None = None) -> list[dict[str, Any]]:
    entries = []
    for index, name in enumerate(names):
        entry: dict[str, Any] = {"index": index, "name": name}
        if parameters:
            entry["parameters"] = parameters
        entries.append(entry)
    return entries


def delivery_order(order: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if order.get("id") is not None:
        converted["id"] = str(order["id"])
    if order.get("total") not in (None, ""):
        converted["total"] = float(order["total"])
    products = order.get("purchasedProductIds")
    if products:
        converted["purchasedProductIds"] = products if isinstance(products, str) else ",".join(map(str, products))
    return converted


def option_content(options: list[dict[str, Any]], as_json: bool = False) -> Any:
    """The single and batch mbox APIs' ``content``: the first option's content, JSON offers as their text
    (as they are, with the batch API's ``contentAsJson``)."""
    for option in options:
        content = option.get("content")
        if content is None:
            continue
        return content if as_json or isinstance(content, str) else orjson.dumps(content).decode()
    return ""


def compact_json(value: Any) -> bytes:
    """JSON bytes to keep: orjson's result holds a 4 KB allocation, whatever its length, so what stays
    in memory for long is copied to an object of its own size."""
    return bytes(memoryview(orjson.dumps(value)))


def cached_mbox(prefetched: dict[str, Any]) -> CachedMbox:
    """A cache entry from one prefetched mbox of a Delivery API answer."""
    options = []
    display_tokens = []
    for option in prefetched.get("options") or []:
        option = dict(option)
        token = option.pop("eventToken", None)
        if token:
            display_tokens.append(token)
        options.append(option)
    metrics = prefetched.get("metrics") or []
    click_tokens = tuple(m["eventToken"] for m in metrics if m.get("type") == "click" and m.get("eventToken"))
    return CachedMbox(
        name=prefetched["name"],
        options_json=compact_json(options),
        metrics_json=compact_json(metrics),
        display_tokens=tuple(display_tokens),
        click_tokens=click_tokens,
        state=prefetched.get("state"),
    )


def cached_mboxes(answer: dict[str, Any]) -> list[CachedMbox]:
    return [cached_mbox(m) for m in (answer.get("prefetch") or {}).get("mboxes") or [] if m.get("name")]


def executed_options(answer: dict[str, Any], index: int = 0) -> list[dict[str, Any]]:
    for mbox in (answer.get("execute") or {}).get("mboxes") or []:
        if mbox.get("index") == index:
            return mbox.get("options") or []
    return []
