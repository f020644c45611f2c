"""The wire APIs' request and answer schemas, as the OpenAPI document's components."""

from __future__ import annotations

from typing import Any

from proxy.api.validation import MAX_NOTIFICATIONS

STRING = {"type": "string"}
SCALAR = {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
PARAMETERS = {"type": "object", "maxProperties": 50, "additionalProperties": SCALAR}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def mbox_entry(index: str, name: str, *parameters: str) -> dict[str, Any]:
    """An mbox of the batch or Delivery API: its index, its name, its parameters."""
    return {
        "type": "object",
        "required": [index, name],
        "properties": {
            index: {"type": "integer", "minimum": 0},
            name: {"type": "string", "minLength": 1, "maxLength": 250},
            **{key: PARAMETERS for key in ("parameters", *parameters)},
        },
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {"status": {"type": "integer"}, "message": STRING, "field": STRING},
    },
    "VisitorId": {
        "type": "object",
        "properties": {
            "tntId": {"type": "string", "maxLength": 128},
            "thirdPartyId": {"type": "string", "maxLength": 128},
            "marketingCloudVisitorId": {"type": "string", "maxLength": 128},
            "customerIds": {"type": "array", "maxItems": 50, "items": {"type": "object"}},
        },
    },
    "SingleMboxRequest": {
        "type": "object",
        "required": ["mbox"],
        "properties": {
            "mbox": {"type": "string", "minLength": 1, "maxLength": 249},
            "clicked": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
            "tntId": {"type": "string", "maxLength": 127},
            "thirdPartyId": {"type": "string", "maxLength": 127},
            "marketingCloudVisitorId": {"type": "string", "maxLength": 127},
            "profileParameters": PARAMETERS,
            "mboxParameters": PARAMETERS,
            "order": {"type": "object"},
            "requestLocation": {
                "type": "object",
                "properties": {
                    "pageURL": STRING,
                    "referrerURL": STRING,
                    "ipAddress": STRING,
                    "impressionId": STRING,
                    "host": STRING,
                },
            },
            "mboxTrace": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
        },
    },
    "SingleMboxAnswer": {
        "type": "object",
        "properties": {
            "tntId": STRING,
            "thirdPartyId": STRING,
            "marketingCloudVisitorId": STRING,
            "content": STRING,
            "sessionId": STRING,
        },
    },
    "BatchMboxRequest": {
        "type": "object",
        "required": ["client"],
        "properties": {
            "client": STRING,
            "id": ref("VisitorId"),
            "profileParameters": PARAMETERS,
            "contentAsJson": {"type": "boolean"},
            "mboxes": {"type": "array", "maxItems": 50, "items": ref("BatchMbox")},
            "prefetch": {"type": "array", "maxItems": 50, "items": ref("BatchMbox")},
            "notifications": {"type": "array", "items": {"type": "object"}, "maxItems": MAX_NOTIFICATIONS},
        },
    },
    "BatchMbox": mbox_entry("indexId", "mbox"),
    "DeliveryRequest": {
        "type": "object",
        "required": ["context"],
        "properties": {
            "requestId": STRING,
            "impressionId": STRING,
            "id": ref("VisitorId"),
            "context": {
                "type": "object",
                "required": ["channel"],
                "properties": {"channel": {"enum": ["web", "mobile"]}, "address": {"type": "object"}},
            },
            "property": {"type": "object", "properties": {"token": STRING}},
            "execute": {
                "type": "object",
                "properties": {"mboxes": {"type": "array", "maxItems": 50, "items": ref("DeliveryMbox")}},
            },
            "prefetch": {
                "type": "object",
                "properties": {"mboxes": {"type": "array", "maxItems": 50, "items": ref("DeliveryMbox")}},
            },
            "notifications": {"type": "array", "items": ref("Notification"), "maxItems": MAX_NOTIFICATIONS},
        },
    },
    "DeliveryMbox": mbox_entry("index", "name", "profileParameters"),
    "Notification": {
        "type": "object",
        "required": ["id", "type", "timestamp"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 200},
            "type": {"enum": ["display", "click"]},
            "timestamp": {"type": "integer", "minimum": 1},
            "tokens": {"type": "array", "items": STRING},
            "impressionId": STRING,
            "mbox": {"type": "object", "properties": {"name": STRING, "state": STRING}},
        },
    },
}
