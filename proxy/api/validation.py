"""Request validation by the tables of Target's delivery and profile documents.

Each check raises ``ApiError(400, ...)`` naming the offending field (``mboxes[2].parameters.x``), so a bad
request is refused before anything metered is spent. The limits differ slightly between the single
mbox API ("Length < N") and the batch API ("max size N"); each validator follows its own table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.api.checks import (
    MAX_PARAMETERS,
    RESERVED_MBOX_NAMES,
    boolean_flag,
    client_code,
    fail,
    ip_address,
    is_one_of,
    mbox_name,
    non_negative_index,
    optional_array,
    optional_object,
    order,
    parameters,
    product,
    profile_parameters,
    require_object,
    text,
    tnt_id,
    url,
    visitor_id,
)
from proxy.content.prefetch import MAX_BATCH_MBOXES

# Notifications one request to the gateway may carry (Target recommends about 50): each is acknowledged
# at once, then sent upstream at the gateway's cost.
MAX_NOTIFICATIONS = 100
CHANNELS = frozenset({"web", "mobile"})
NOTIFICATION_TYPES = frozenset({"display", "click"})


# --- Single mbox API: POST /rest/v1/mbox/{sessionId}?client=C ---------------------------------------


IDENTITY_ONLY = frozenset({"mbox", "tntId", "thirdPartyId", "marketingCloudVisitorId"})


def single_mbox(body: Any) -> dict[str, Any]:
    body = require_object(body)
    # Names may come as numbers, as upstream reads them: from here on they are the text they stand for.
    body["mbox"] = mbox_name(body.get("mbox"), "mbox", 249)
    if body.keys() <= IDENTITY_ONLY:  # what a kiosk sends with every view: check only that
        tnt_id(body.get("tntId"), "tntId", 127)
        text(body.get("thirdPartyId"), "thirdPartyId", 127)
        text(body.get("marketingCloudVisitorId"), "marketingCloudVisitorId", 127)
        return body
    boolean_flag(body.get("clicked"), "clicked")
    boolean_flag(body.get("mboxTrace"), "mboxTrace")
    tnt_id(body.get("tntId"), "tntId", 127)
    text(body.get("thirdPartyId"), "thirdPartyId", 127)
    text(body.get("marketingCloudVisitorId"), "marketingCloudVisitorId", 127)
    order(body.get("order"), "order", id_max=249)
    profile_parameters(body.get("profileParameters"), "profileParameters", name_max=127, value_max=255)
    parameters(body.get("mboxParameters"), "mboxParameters", name_max=127, value_max=255, forbid_order=True)
    location = optional_object(body.get("requestLocation"), "requestLocation")
    if location:
        url(location.get("pageURL"), "requestLocation.pageURL", 3071)
        url(location.get("referrerURL"), "requestLocation.referrerURL", 3071)
        ip_address(location.get("ipAddress"), "requestLocation.ipAddress")
        text(location.get("impressionId"), "requestLocation.impressionId", 127)
        text(location.get("host"), "requestLocation.host", 249)
    return body


# --- Batch mbox API: POST /rest/v2/batchmbox -----------------------------------------------------------


def mbox_entry(entry: Any, field: str, index_key: str, name_key: str, *, prefetch: bool) -> tuple[dict[str, Any], str]:
    """An mbox of a batch or Delivery API request: an object with an index and a name (never ``-clicked``
    when prefetched); the entry and its name."""
    if entry is None:
        raise fail(field.rsplit("[", 1)[0], "may not contain null elements")
    entry = require_object(entry, field)
    non_negative_index(entry.get(index_key), f"{field}.{index_key}")
    name = entry[name_key] = mbox_name(entry.get(name_key), f"{field}.{name_key}", 250)
    if prefetch and name.endswith("-clicked"):
        raise fail(f"{field}.{name_key}", "prefetched mboxes may not have the '-clicked' suffix")
    return entry, name


def environment_id(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise fail("environmentId", "must be a valid environment id")


def batch_mbox_entry(entry: Any, field: str, *, prefetch: bool) -> None:
    entry, name = mbox_entry(entry, field, "indexId", "mbox", prefetch=prefetch)
    if name.strip().lower() in RESERVED_MBOX_NAMES:
        raise fail(f"{field}.mbox", "is a reserved name")
    parameters(entry.get("parameters"), f"{field}.parameters", name_max=128, value_max=5000, forbid_order=True)
    product(entry.get("product"), f"{field}.product")
    order(entry.get("order"), f"{field}.order", id_max=250)


def batch_mbox(body: Any, max_notifications: int | None = None) -> dict[str, Any]:
    body = require_object(body)
    client_code(body.get("client"))
    visitor_id(body.get("id"))
    profile_parameters(body.get("profileParameters"), "profileParameters", name_max=128, value_max=256)
    environment_id(body.get("environmentId"))
    if body.get("contentAsJson") is not None and not isinstance(body.get("contentAsJson"), bool):
        raise fail("contentAsJson", "must be true or false")
    for key, is_prefetch in (("mboxes", False), ("prefetch", True)):
        for index, entry in enumerate(optional_array(body.get(key), key, MAX_BATCH_MBOXES)):
            batch_mbox_entry(entry, f"{key}[{index}]", prefetch=is_prefetch)
    for index, note in enumerate(optional_array(body.get("notifications"), "notifications", max_notifications)):
        where = f"notifications[{index}]"
        note = require_object(note, where)
        note["mbox"] = mbox_name(note.get("mbox"), f"{where}.mbox", 250)
        if note.get("timestamp") is not None:
            timestamp(note["timestamp"], f"{where}.timestamp")
        tokens = optional_array(note.get("eventTokens"), f"{where}.eventTokens")
        for position, token in enumerate(tokens):
            text(token, f"{where}.eventTokens[{position}]", 1024, required=True)
    return body


# --- Delivery API: POST /rest/v1/delivery ------------------------------------------------------------


def delivery_mbox(entry: Any, field: str, *, prefetch: bool) -> None:
    entry, _ = mbox_entry(entry, field, "index", "name", prefetch=prefetch)
    request_details(entry, field)


def request_details(entry: dict[str, Any], field: str) -> None:
    parameters(entry.get("parameters"), f"{field}.parameters", name_max=128, value_max=5000, forbid_order=True)
    profile_parameters(entry.get("profileParameters"), f"{field}.profileParameters", name_max=128, value_max=256)
    product(entry.get("product"), f"{field}.product")
    order(entry.get("order"), f"{field}.order", id_max=250)
    address = optional_object(entry.get("address"), f"{field}.address")
    if address:
        url(address.get("url"), f"{field}.address.url", 3071)
        url(address.get("referringUrl"), f"{field}.address.referringUrl", 3071)


def timestamp(stamp: Any, field: str) -> None:
    """A positive number (of milliseconds, or seconds on the batch mbox API) that fits in 64 bits, as
    upstream and the gateway's own log take it."""
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not 0 < stamp < 2**63:
        raise fail(field, "must be a positive number of milliseconds")


def notification(note: Any, field: str) -> dict[str, Any]:
    note = require_object(note, field)
    text(note.get("id"), f"{field}.id", 200, required=True)
    if not is_one_of(note.get("type"), NOTIFICATION_TYPES):
        raise fail(f"{field}.type", "must be display or click")
    timestamp(note.get("timestamp"), f"{field}.timestamp")
    text(note.get("impressionId"), f"{field}.impressionId", 128)
    for position, token in enumerate(optional_array(note.get("tokens"), f"{field}.tokens")):
        text(token, f"{field}.tokens[{position}]", 1024, required=True)
    mbox = optional_object(note.get("mbox"), f"{field}.mbox")
    if mbox is not None:
        mbox["name"] = mbox_name(mbox.get("name"), f"{field}.mbox.name", 250)
        text(mbox.get("state"), f"{field}.mbox.state", 4096)
    request_details(note, field)
    return note


def delivery(body: Any, max_notifications: int | None = None) -> dict[str, Any]:
    body = require_object(body)
    visitor_id(body.get("id"))
    text(body.get("requestId"), "requestId", 128)
    text(body.get("impressionId"), "impressionId", 128)
    context = optional_object(body.get("context"), "context")
    if context is None:
        raise fail("context", "is required")
    if not is_one_of(context.get("channel"), CHANNELS):
        raise fail("context.channel", "must be web or mobile")
    address = optional_object(context.get("address"), "context.address")
    if address:
        url(address.get("url"), "context.address.url", 3071)
        url(address.get("referringUrl"), "context.address.referringUrl", 3071)
    geo = optional_object(context.get("geo"), "context.geo")
    if geo:
        ip_address(geo.get("ipAddress"), "context.geo.ipAddress")
    prop = optional_object(body.get("property"), "property")
    if prop:
        text(prop.get("token"), "property.token", 128)
    environment_id(body.get("environmentId"))
    for key, is_prefetch in (("execute", False), ("prefetch", True)):
        section = optional_object(body.get(key), key)
        if not section:
            continue
        page_load = optional_object(section.get("pageLoad"), f"{key}.pageLoad")
        if page_load:
            request_details(page_load, f"{key}.pageLoad")
        mboxes = optional_array(section.get("mboxes"), f"{key}.mboxes", MAX_BATCH_MBOXES)
        for index, entry in enumerate(mboxes):
            delivery_mbox(entry, f"{key}.mboxes[{index}]", prefetch=is_prefetch)
    for index, note in enumerate(optional_array(body.get("notifications"), "notifications", max_notifications)):
        notification(note, f"notifications[{index}]")
    return body


# --- Profile update: /m2/{client}/profile/update?mboxPC=...&profile.x=... ---------------------------


def profile_update(query: Mapping[str, str]) -> tuple[str, str, dict[str, str]]:
    """Returns (identity kind, identity, attributes) for a single profile update."""
    if query.get("mboxPC"):
        kind, identity = "mboxPC", tnt_id(query["mboxPC"], "mboxPC", 128)
    elif query.get("mbox3rdPartyId"):
        kind, identity = "mbox3rdPartyId", text(query["mbox3rdPartyId"], "mbox3rdPartyId", 128)
    else:
        raise fail("mboxPC", "mboxPC or mbox3rdPartyId is required")
    attributes = {key[len("profile.") :]: value for key, value in query.items() if key.startswith("profile.")}
    if not attributes:
        raise fail("profile", "at least one profile.<name> parameter is required")
    if len(attributes) > MAX_PARAMETERS:
        raise fail("profile", f"size must be between 0 and {MAX_PARAMETERS}")
    for name, value in attributes.items():
        if not name or len(name) > 128:
            raise fail(f"profile.{name}", "name size must be between 1 and 128")
        if len(value) > 256:
            raise fail(f"profile.{name}", "size must be at most 256")
    assert identity is not None
    return kind, identity, attributes
