"""Request validation by the tables of Target's delivery and profile documents.

Each check raises ``ApiError(400, ...)`` naming the offending field (``mboxes[2].parameters.x``), so a bad
request is refused before anything metered is spent. The limits differ slightly between the single
mbox API ("Length < N") and the batch API ("max size N"); each validator follows its own table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from proxy.content.prefetch import MAX_BATCH_MBOXES
from proxy.http.errors import ApiError

# Notifications one request to the gateway may carry (Target recommends about 50): each is acknowledged
# at once, then sent upstream at the gateway's cost.
MAX_NOTIFICATIONS = 100
MAX_PARAMETERS = 50
MAX_CUSTOMER_IDS = 50
FORBIDDEN_MBOX_PARTS = ("'", '"', "<", ">", "%22", "%27", "%3c", "%3e")
RESERVED_MBOX_NAMES = frozenset({"** display mboxes **", "** any mbox **", "** click from display mbox **"})
ORDER_PARAMETERS = frozenset({"orderId", "orderTotal", "productPurchasedId"})
AUTHENTICATED_STATES = frozenset({"unknown", "authenticated", "logged_out"})
CHANNELS = frozenset({"web", "mobile"})
NOTIFICATION_TYPES = frozenset({"display", "click"})
CLIENT_CODE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
SCALARS = (str, int, float, bool)


def fail(field: str, message: str) -> ApiError:
    return ApiError(400, f"{field}: {message}", field)


def is_one_of(value: Any, allowed: frozenset[str]) -> bool:
    # A set lookup of a list or object would raise TypeError: the client's 400, not the gateway's 500.
    return isinstance(value, str) and value in allowed


def require_object(body: Any, field: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise fail(field, "must be a JSON object")
    return body


def optional_object(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise fail(field, "must be a JSON object")
    return value


def optional_array(value: Any, field: str, max_count: int | None = None) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(field, "must be an array")
    if max_count is not None and len(value) > max_count:
        raise fail(field, f"size must be between 0 and {max_count}")
    return value


def text(value: Any, field: str, max_len: int, *, required: bool = False, blank_ok: bool = False) -> str | None:
    """A string of at most ``max_len`` characters; numbers are accepted as their text."""
    if value is None:
        if required:
            raise fail(field, "may not be null")
        return None
    if isinstance(value, bool) or not isinstance(value, SCALARS):
        raise fail(field, "must be a string")
    value = str(value)
    if not blank_ok and not value.strip():
        raise fail(field, "may not be blank")
    if len(value) > max_len:
        raise fail(field, f"size must be at most {max_len}")
    return value


def boolean_flag(value: Any, field: str) -> bool:
    """Empty, true or false, as a JSON boolean or as text."""
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(field, "must be empty, true or false")


def non_negative_index(value: Any, field: str) -> int:
    if value is None:
        raise fail(field, "may not be null")
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(field, "must be an integer")
    if value < 0:
        raise fail(field, "must be greater than or equal to 0")
    return value


def session_id(value: Any, field: str = "sessionId") -> str:
    """1-128 printable characters, none of them a space, '?' or '/'."""
    if not isinstance(value, str) or not value:
        raise fail(field, "is required")
    if len(value) > 128:
        raise fail(field, "size must be between 1 and 128")
    for char in value:
        if char in "?/" or char.isspace() or not char.isprintable():
            raise fail(field, "must be printable characters without space, '?' or '/'")
    return value


def client_code(value: Any, field: str = "client") -> str:
    if not isinstance(value, str) or not value:
        raise fail(field, "is required")
    if not CLIENT_CODE.fullmatch(value):
        raise fail(field, "must be a valid client code")
    return value


def mbox_name(value: Any, field: str, max_len: int) -> str:
    name = text(value, field, max_len, required=True)
    assert name is not None
    lowered = name.lower()
    if any(part in lowered for part in FORBIDDEN_MBOX_PARTS):
        raise fail(field, "may not contain ', \", <, > or their %-encodings")
    return name


def tnt_id(value: Any, field: str, max_len: int) -> str | None:
    """At most one dot, and only as the delimiter of the location hint suffix."""
    tnt = text(value, field, max_len)
    if tnt is not None and tnt.count(".") > 1:
        raise fail(field, "may contain a single dot only, before the location hint")
    return tnt


def parameters(value: Any, field: str, *, name_max: int, value_max: int, forbid_order: bool = False) -> dict[str, str]:
    """Mbox parameters: at most 50, no ``profile.`` names (those belong in profileParameters)."""
    params = optional_object(value, field) or {}
    if len(params) > MAX_PARAMETERS:
        raise fail(field, f"size must be between 0 and {MAX_PARAMETERS}")
    for name, raw in params.items():
        where = f"{field}.{name}"
        if not name.strip():
            raise fail(field, "parameter names may not be blank")
        if len(name) > name_max:
            raise fail(where, f"name size must be at most {name_max}")
        if name.startswith("profile."):
            raise fail(where, "must not start with 'profile.'; send it in profileParameters")
        if forbid_order and name in ORDER_PARAMETERS:
            raise fail(where, "order parameters belong in 'order'")
        text(raw, where, value_max, blank_ok=True)
    return params


def profile_parameters(value: Any, field: str, *, name_max: int, value_max: int) -> dict[str, str]:
    params = optional_object(value, field) or {}
    if len(params) > MAX_PARAMETERS:
        raise fail(field, f"size must be between 0 and {MAX_PARAMETERS}")
    for name, raw in params.items():
        where = f"{field}.{name}"
        if not name.strip():
            raise fail(field, "parameter names may not be blank")
        if len(name) > name_max:
            raise fail(where, f"name size must be at most {name_max}")
        if name.startswith("profile."):
            raise fail(where, "must not start with 'profile.'")
        text(raw, where, value_max, blank_ok=True)
    return params


def decimal(value: Any, field: str, *, minimum: float | None = None) -> None:
    if value is None or value == "":
        return
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number != number:
        raise fail(field, "must be a valid decimal")
    if minimum is not None and number < minimum:
        raise fail(field, f"must be greater than or equal to {minimum:g}")


def purchased_product_ids(value: Any, field: str) -> None:
    if value is None:
        return
    ids = value.split(",") if isinstance(value, str) else optional_array(value, field)
    for index, product in enumerate(ids):
        item = text(product, f"{field}[{index}]", 50)
        if item is None:
            raise fail(f"{field}[{index}]", "may not be blank")
    if len(",".join(str(product) for product in ids)) > 250:
        raise fail(field, "total length of the comma-separated ids must be at most 250")


def order(value: Any, field: str, *, id_max: int) -> None:
    details = optional_object(value, field)
    if details is None:
        return
    text(details.get("id"), f"{field}.id", id_max)
    decimal(details.get("total"), f"{field}.total", minimum=0)
    purchased_product_ids(details.get("purchasedProductIds"), f"{field}.purchasedProductIds")


def product(value: Any, field: str) -> None:
    details = optional_object(value, field)
    if details is None:
        return
    for key in ("id", "categoryId"):
        if key in details:
            text(details[key], f"{field}.{key}", 128, required=True)


def url(value: Any, field: str, max_len: int) -> None:
    address = text(value, field, max_len)
    if address is None:
        return
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise fail(field, "must be a valid URL")


def ip_address(value: Any, field: str) -> None:
    if value is None or value == "":
        return
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        raise fail(field, "must be a valid IP address") from None


def visitor_id(value: Any, field: str = "id") -> dict[str, Any]:
    """The batch and Delivery API ``id`` object."""
    ids = optional_object(value, field) or {}
    tnt_id(ids.get("tntId"), f"{field}.tntId", 128)
    text(ids.get("thirdPartyId"), f"{field}.thirdPartyId", 128)
    text(ids.get("marketingCloudVisitorId"), f"{field}.marketingCloudVisitorId", 128)
    customers = optional_array(ids.get("customerIds"), f"{field}.customerIds", MAX_CUSTOMER_IDS)
    for index, customer in enumerate(customers):
        where = f"{field}.customerIds[{index}]"
        if customer is None:
            raise fail(f"{field}.customerIds", "may not contain null elements")
        customer = require_object(customer, where)
        text(customer.get("id"), f"{where}.id", 128, required=True)
        text(customer.get("integrationCode"), f"{where}.integrationCode", 50, required=True)
        state = customer.get("authenticatedState", "unknown")
        if not is_one_of(state, AUTHENTICATED_STATES):
            raise fail(f"{where}.authenticatedState", "must be unknown, authenticated or logged_out")
    return ids


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
