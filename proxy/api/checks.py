"""The checks of single fields that the wire APIs' tables share: each raises ``ApiError(400, ...)`` naming
the offending field (``mboxes[2].parameters.x``)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from proxy.http.errors import ApiError

MAX_PARAMETERS = 50
MAX_CUSTOMER_IDS = 50
FORBIDDEN_MBOX_PARTS = ("'", '"', "<", ">", "%22", "%27", "%3c", "%3e")
RESERVED_MBOX_NAMES = frozenset({"** display mboxes **", "** any mbox **", "** click from display mbox **"})
ORDER_PARAMETERS = frozenset({"orderId", "orderTotal", "productPurchasedId"})
AUTHENTICATED_STATES = frozenset({"unknown", "authenticated", "logged_out"})
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


def parameters(
    value: Any,
    field: str,
    *,
    name_max: int,
    value_max: int,
    forbid_order: bool = False,
    profile_hint: str = "; send it in profileParameters",
) -> dict[str, str]:
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
            raise fail(where, f"must not start with 'profile.'{profile_hint}")
        if forbid_order and name in ORDER_PARAMETERS:
            raise fail(where, "order parameters belong in 'order'")
        text(raw, where, value_max, blank_ok=True)
    return params


def profile_parameters(value: Any, field: str, *, name_max: int, value_max: int) -> dict[str, str]:
    """Profile parameters: as mbox parameters, named without their ``profile.`` prefix."""
    return parameters(value, field, name_max=name_max, value_max=value_max, profile_hint="")


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
