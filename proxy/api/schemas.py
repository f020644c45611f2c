"""The wire APIs' requests, written in the kinds of ``proxy.api.fields`` by the tables of Target's delivery
documents: the gateway validates with them, and the OpenAPI document's components are built from them.

The limits differ slightly between the single mbox API ("Length < N") and the batch API ("max size N");
each request follows its own table.
"""

from __future__ import annotations

from typing import Any

from proxy.api.containers import Array, Object, Parameters, ProductIds
from proxy.api.fields import (
    Boolean,
    Choice,
    Decimal,
    Field,
    Flag,
    Integer,
    Invalid,
    IpAddress,
    MboxName,
    Pattern,
    SessionId,
    Text,
    Timestamp,
    TntId,
    Url,
)
from proxy.content.prefetch import MAX_BATCH_MBOXES

# Notifications one request to the gateway may carry (Target recommends about 50): each is acknowledged
# at once, then sent upstream at the gateway's cost.
MAX_NOTIFICATIONS = 100
RESERVED_MBOX_NAMES = frozenset({"** display mboxes **", "** any mbox **", "** click from display mbox **"})
NULL_ELEMENTS = "may not contain null elements"
A_BODY = "must be a JSON object"

CLIENT_CODE = Pattern(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", "must be a valid client code")
SESSION_ID = SessionId()
CLICKED = Flag()


def order(id_max: int) -> Object:
    return Object({"id": Text(id_max), "total": Decimal(minimum=0), "purchasedProductIds": ProductIds()})


PRODUCT = Object({"id": Text(128, required=True), "categoryId": Text(128, required=True)})
ADDRESS = Object({"url": Url(3071), "referringUrl": Url(3071)})


def identities(longest: int) -> dict[str, Field]:
    return {"tntId": TntId(longest), "thirdPartyId": Text(longest), "marketingCloudVisitorId": Text(longest)}


CUSTOMER_ID = Object(
    {
        "id": Text(128, required=True),
        "integrationCode": Text(50, required=True),
        "authenticatedState": Choice(
            ("unknown", "authenticated", "logged_out"), "must be unknown, authenticated or logged_out"
        ),
    },
    required=("id", "integrationCode"),
    null=A_BODY,
)
VISITOR_ID = Object({**identities(128), "customerIds": Array(CUSTOMER_ID, 50, nulls=NULL_ELEMENTS)})


# --- Single mbox API: POST /rest/v1/mbox/{sessionId}?client=C ---------------------------------------

SINGLE_MBOX = Object(
    {
        "mbox": MboxName(249),
        **identities(127),
        "clicked": CLICKED,
        "mboxTrace": Flag(),
        "order": order(249),
        "profileParameters": Parameters(127, 255, profile=True),
        "mboxParameters": Parameters(127, 255, forbid_order=True),
        "requestLocation": Object(
            {
                "pageURL": Url(3071),
                "referrerURL": Url(3071),
                "ipAddress": IpAddress(),
                "impressionId": Text(127),
                "host": Text(249),
            }
        ),
    },
    required=("mbox",),
    null=A_BODY,
)


# --- Batch mbox API: POST /rest/v2/batchmbox -----------------------------------------------------------


def not_clicked(name_key: str) -> Any:
    def rule(entry: dict[str, Any]) -> None:
        """A prefetched mbox's name may not end in ``-clicked``."""
        if entry[name_key].endswith("-clicked"):
            raise Invalid("prefetched mboxes may not have the '-clicked' suffix", name_key)

    return rule


def not_reserved(entry: dict[str, Any]) -> None:
    """The names Target reserves are refused, in any case: ``** display mboxes **``, ``** any mbox **`` and
    ``** click from display mbox **``."""
    if entry["mbox"].strip().lower() in RESERVED_MBOX_NAMES:
        raise Invalid("is a reserved name", "mbox")


def both(*rules: Any) -> Any:
    def rule(entry: dict[str, Any]) -> None:
        for each in rules:
            each(entry)

    rule.__doc__ = " ".join(each.__doc__ or "" for each in rules)
    return rule


ENVIRONMENT_ID = Integer("must be a valid environment id")
BATCH_MBOX = Object(
    {
        "indexId": Integer("must be an integer", minimum=0, required=True),
        "mbox": MboxName(250),
        "parameters": Parameters(128, 5000, forbid_order=True),
        "product": PRODUCT,
        "order": order(250),
    },
    required=("indexId", "mbox"),
    null=A_BODY,
    rule=not_reserved,
)
BATCH_NOTIFICATION = Object(
    {
        "mbox": MboxName(250),
        "timestamp": Timestamp(required=False),
        "eventTokens": Array(Text(1024, required=True)),
    },
    required=("mbox",),
    null=A_BODY,
)
BATCH_REQUEST = Object(
    {
        "client": CLIENT_CODE,
        "id": VISITOR_ID,
        "profileParameters": Parameters(128, 256, profile=True),
        "environmentId": ENVIRONMENT_ID,
        "contentAsJson": Boolean(),
        "mboxes": Array(BATCH_MBOX, MAX_BATCH_MBOXES, nulls=NULL_ELEMENTS),
        "prefetch": Array(
            BATCH_MBOX.extended({}, rule=both(not_clicked("mbox"), not_reserved)), MAX_BATCH_MBOXES, nulls=NULL_ELEMENTS
        ),
        "notifications": Array(BATCH_NOTIFICATION, MAX_NOTIFICATIONS),
    },
    required=("client",),
    null=A_BODY,
)


# --- Delivery API: POST /rest/v1/delivery ------------------------------------------------------------

REQUEST_DETAILS: dict[str, Field] = {
    "parameters": Parameters(128, 5000, forbid_order=True),
    "profileParameters": Parameters(128, 256, profile=True),
    "product": PRODUCT,
    "order": order(250),
    "address": ADDRESS,
}
DELIVERY_MBOX = Object(
    {"index": Integer("must be an integer", minimum=0, required=True), "name": MboxName(250), **REQUEST_DETAILS},
    required=("index", "name"),
    null=A_BODY,
)


def section(mbox: Object) -> Object:
    return Object({"pageLoad": Object(REQUEST_DETAILS), "mboxes": Array(mbox, MAX_BATCH_MBOXES, nulls=NULL_ELEMENTS)})


NOTIFICATION = Object(
    {
        "id": Text(200, required=True),
        "type": Choice(("display", "click"), "must be display or click"),
        "timestamp": Timestamp(required=True),
        "impressionId": Text(128),
        "tokens": Array(Text(1024, required=True)),
        "mbox": Object({"name": MboxName(250), "state": Text(4096)}, required=("name",)),
        **REQUEST_DETAILS,
    },
    required=("id", "type", "timestamp"),
    null=A_BODY,
)
DELIVERY_REQUEST = Object(
    {
        "id": VISITOR_ID,
        "requestId": Text(128),
        "impressionId": Text(128),
        "context": Object(
            {
                "channel": Choice(("web", "mobile"), "must be web or mobile"),
                "address": ADDRESS,
                "geo": Object({"ipAddress": IpAddress()}),
            },
            required=("channel",),
            null="is required",
        ),
        "property": Object({"token": Text(128)}),
        "environmentId": ENVIRONMENT_ID,
        "execute": section(DELIVERY_MBOX),
        "prefetch": section(DELIVERY_MBOX.extended({}, rule=not_clicked("name"))),
        "notifications": Array(NOTIFICATION, MAX_NOTIFICATIONS),
    },
    required=("context",),
    null=A_BODY,
)


# --- The OpenAPI document's components ---------------------------------------------------------------

STRING = {"type": "string"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def components() -> dict[str, Any]:
    """The requests as the gateway checks them, and the answers it writes itself."""
    return {
        "Error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {"status": {"type": "integer"}, "message": STRING, "field": STRING},
        },
        "SingleMboxRequest": SINGLE_MBOX.schema(),
        "SingleMboxAnswer": {
            "type": "object",
            "properties": {
                key: STRING for key in ("tntId", "thirdPartyId", "marketingCloudVisitorId", "content", "sessionId")
            },
        },
        "BatchMboxRequest": BATCH_REQUEST.schema(),
        "DeliveryRequest": DELIVERY_REQUEST.schema(),
    }
