"""The edge's request tables, as rules: the single mbox API ("Length < N"), the batch mbox API ("max size
N"), the Delivery API, and the single profile update. Each check names the field at fault
(``mboxes[2].parameters.x``) in a 400; nothing is counted for a refused request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.emulator.checks import (
    Rule,
    address,
    array,
    client_code,
    decimal,
    every,
    fail,
    flag,
    index,
    ip,
    item,
    millis,
    name,
    obj,
    one_of,
    shape,
    string,
    text,
    tnt,
    unchecked,
    when_present,
    where,
)

MOST_MBOXES = 50
MOST_PARAMETERS = 50
MOST_CUSTOMER_IDS = 50
ORDER_KEYS = frozenset({"orderId", "orderTotal", "productPurchasedId"})
RESERVED_NAMES = frozenset({"** display mboxes **", "** any mbox **", "** click from display mbox **"})


def parameters(name_max: int, value_max: int, *, mbox: bool) -> Rule:
    """Mbox parameters (``mbox``: no order keys, and profile ones belong in profileParameters) or profile
    parameters (named without their ``profile.`` prefix): at most 50."""
    hint = "; send it in profileParameters" if mbox else ""

    def rule(value: Any, field: str) -> Any:
        found = obj()(value, field) or {}
        if len(found) > MOST_PARAMETERS:
            raise fail(field, f"size must be between 0 and {MOST_PARAMETERS}")
        for key, given in found.items():
            at = f"{field}.{key}"
            wrong = [
                (place, problem)
                for applies, place, problem in (
                    (key.strip() == "", field, "parameter names may not be blank"),
                    (len(key) > name_max, at, f"name size must be at most {name_max}"),
                    (key.startswith("profile."), at, f"must not start with 'profile.'{hint}"),
                    (mbox and key in ORDER_KEYS, at, "order parameters belong in 'order'"),
                )
                if applies
            ]
            if wrong:
                raise fail(*wrong[0])
            text(given, at, value_max, blank_ok=True)
        return value

    return rule


def product_ids(value: Any, field: str) -> Any:
    """Purchased product ids: a comma-separated string or an array, each at most 50 characters, 250 in all."""
    if value is None:
        return None
    ids = value.split(",") if type(value) is str else array(unchecked)(value, field)
    for position, product in enumerate(ids):
        if text(product, f"{field}[{position}]", 50) is None:
            raise fail(f"{field}[{position}]", "may not be blank")
    if len(",".join(map(str, ids))) > 250:
        raise fail(field, "total length of the comma-separated ids must be at most 250")
    return value


def order(id_max: int) -> Rule:
    return obj(id=string(id_max), total=decimal(0), purchasedProductIds=product_ids)


def product(value: Any, field: str) -> Any:
    # A key present with null is refused ("may not be null"); an absent one is fine.
    found = obj()(value, field)
    for key in ("id", "categoryId"):
        if found is not None and key in found:
            text(found[key], where(field, key), 128, required=True)
    return value


def visitor_ids(max_len: int) -> Rule:
    customer = item(
        id=string(128, required=True),
        integrationCode=string(50, required=True),
        authenticatedState=unchecked,
    )

    def customer_state(value: Any, field: str) -> Any:
        state = value.get("authenticatedState", "unknown")
        one_of(("unknown", "authenticated", "logged_out"), "must be unknown, authenticated or logged_out")(
            state, f"{field}.authenticatedState"
        )
        return value

    return obj(
        tntId=tnt(max_len),
        thirdPartyId=string(max_len),
        marketingCloudVisitorId=string(max_len),
        customerIds=array(every(customer, customer_state), MOST_CUSTOMER_IDS, nulls=False),
    )


def environment_id(value: Any, field: str) -> Any:
    if value is not None and type(value) is not int:
        raise fail(field, "must be a valid environment id")
    return value


def mbox_entry(index_key: str, name_key: str, *, prefetched: bool, batch: bool, **details: Rule) -> Rule:
    """An mbox of a batch or Delivery API request: an index, a name (never ``-clicked`` when prefetched, never
    a reserved name on the batch API), and its details."""
    entry = item(**{index_key: index, name_key: name(250)}, **details)

    def rule(value: Any, field: str) -> Any:
        found = entry(value, field)
        mbox = found[name_key]
        if prefetched and mbox.endswith("-clicked"):
            raise fail(f"{field}.{name_key}", "prefetched mboxes may not have the '-clicked' suffix")
        if batch and mbox.strip().lower() in RESERVED_NAMES:
            raise fail(f"{field}.{name_key}", "is a reserved name")
        return found

    return rule


# --- Single mbox API: POST /rest/v1/mbox/{sessionId}?client=C -----------------------------------------

SINGLE_MBOX = obj(
    required="must be a JSON object",
    mbox=name(249),
    clicked=flag,
    mboxTrace=flag,
    tntId=tnt(127),
    thirdPartyId=string(127),
    marketingCloudVisitorId=string(127),
    order=order(249),
    profileParameters=parameters(127, 255, mbox=False),
    mboxParameters=parameters(127, 255, mbox=True),
    requestLocation=obj(
        pageURL=address(3071),
        referrerURL=address(3071),
        ipAddress=ip,
        impressionId=string(127),
        host=string(249),
    ),
)

# --- Batch mbox API: POST /rest/v2/batchmbox -------------------------------------------------------------


def batch_entry(prefetched: bool) -> Rule:
    return mbox_entry(
        "indexId",
        "mbox",
        prefetched=prefetched,
        batch=True,
        parameters=parameters(128, 5000, mbox=True),
        product=product,
        order=order(250),
    )


def content_as_json(value: Any, field: str) -> Any:
    if value is not None and type(value) is not bool:
        raise fail(field, "must be true or false")
    return value


BATCH_MBOX = obj(
    required="must be a JSON object",
    client=client_code,
    id=visitor_ids(128),
    profileParameters=parameters(128, 256, mbox=False),
    environmentId=environment_id,
    contentAsJson=content_as_json,
    mboxes=array(batch_entry(False), MOST_MBOXES, nulls=False),
    prefetch=array(batch_entry(True), MOST_MBOXES, nulls=False),
    notifications=array(
        item(
            mbox=name(250),
            timestamp=when_present(millis),
            eventTokens=array(string(1024, required=True)),
        )
    ),
)

# --- Delivery API: POST /rest/v1/delivery -----------------------------------------------------------------

DETAILS: dict[str, Rule] = {
    "parameters": parameters(128, 5000, mbox=True),
    "profileParameters": parameters(128, 256, mbox=False),
    "product": product,
    "order": order(250),
    "address": obj(url=address(3071), referringUrl=address(3071)),
}


def delivery_section(prefetched: bool) -> Rule:
    entry = mbox_entry("index", "name", prefetched=prefetched, batch=False, **DETAILS)
    return obj(pageLoad=shape(DETAILS), mboxes=array(entry, MOST_MBOXES, nulls=False))


NOTIFICATION = item(
    id=string(200, required=True),
    type=one_of(("display", "click"), "must be display or click"),
    timestamp=millis,
    impressionId=string(128),
    tokens=array(string(1024, required=True)),
    mbox=obj(name=name(250), state=string(4096)),
    **DETAILS,
)

DELIVERY = obj(
    required="must be a JSON object",
    id=visitor_ids(128),
    requestId=string(128),
    impressionId=string(128),
    context=obj(
        required="is required",
        channel=one_of(("web", "mobile"), "must be web or mobile"),
        address=obj(url=address(3071), referringUrl=address(3071)),
        geo=obj(ipAddress=ip),
    ),
    property=obj(token=string(128)),
    environmentId=environment_id,
    execute=delivery_section(False),
    prefetch=delivery_section(True),
    notifications=array(NOTIFICATION),
)


def single_mbox(body: Any) -> dict[str, Any]:
    return dict(SINGLE_MBOX(body, ""))


def batch_mbox(body: Any) -> dict[str, Any]:
    return dict(BATCH_MBOX(body, ""))


def delivery(body: Any) -> dict[str, Any]:
    return dict(DELIVERY(body, ""))


# --- Profile update: /m2/{client}/profile/update?mboxPC=...&profile.x=... -----------------------------------


def profile_update(query: Mapping[str, str]) -> tuple[str, str, dict[str, str]]:
    """(identity kind, identity, attributes) of a single profile update."""
    if query.get("mboxPC"):
        kind, identity = "mboxPC", tnt(128)(query["mboxPC"], "mboxPC")
    elif query.get("mbox3rdPartyId"):
        kind, identity = "mbox3rdPartyId", text(query["mbox3rdPartyId"], "mbox3rdPartyId", 128)
    else:
        raise fail("mboxPC", "mboxPC or mbox3rdPartyId is required")
    attributes = {key.removeprefix("profile."): value for key, value in query.items() if key.startswith("profile.")}
    if not attributes:
        raise fail("profile", "at least one profile.<name> parameter is required")
    if len(attributes) > MOST_PARAMETERS:
        raise fail("profile", f"size must be between 0 and {MOST_PARAMETERS}")
    for attribute, value in attributes.items():
        if not 1 <= len(attribute) <= 128:
            raise fail(f"profile.{attribute}", "name size must be between 1 and 128")
        if len(value) > 256:
            raise fail(f"profile.{attribute}", "size must be at most 256")
    return kind, str(identity), attributes
