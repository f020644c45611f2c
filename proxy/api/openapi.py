"""The OpenAPI description of the gateway's own and drop-in endpoints, served at ``/openapi.json``."""

from __future__ import annotations

import re
from typing import Any

from proxy import __version__
from proxy.api.schemas import CLIENT_CODE, SESSION_ID, STRING, components, ref


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def answers(
    ok: str, *errors: int, schema: dict[str, Any] | None = None, media: str = "application/json"
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "200": {"description": ok, "content": {media: {"schema": schema or {"type": "object"}}}}
    }
    for status in errors:
        document[str(status)] = {
            "description": ERROR_MEANING[status],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return document


ERROR_MEANING = {
    400: "Invalid input; the message and field name what is wrong.",
    401: "No known client key.",
    403: "The client key lacks the scope.",
    404: "Not found, or not a path the gateway forwards.",
    413: "The body is too large.",
    415: "Unsupported content type.",
    420: "Too many concurrent requests in one session.",
    429: "Over a call budget; see Retry-After.",
    502: "Upstream could not be reached.",
    503: "Not ready, or upstream unavailable.",
    504: "Upstream did not answer in time.",
}
DELIVERY_ERRORS = (400, 413, 415, 420, 502, 503, 504)
BEARER: list[dict[str, list[str]]] = [{"clientKey": []}]
CLIENT_QUERY = {
    "name": "client",
    "in": "query",
    "required": True,
    "schema": CLIENT_CODE.schema(),
}
SESSION_PATH = {
    "name": "sessionId",
    "in": "path",
    "required": True,
    "schema": SESSION_ID.schema(),
}

REST_OF_PATH = {
    "name": "path",
    "in": "path",
    "required": True,
    "description": "The rest of the path, slashes included; only what the gateway's allowlist names is forwarded.",
    "schema": STRING,
}
TENANT = {"name": "tenant", "in": "path", "required": True, "schema": STRING}


def passthrough(summary: str, tag: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """The passthrough's operations, one object per method (each gets its own operation id)."""
    responses = {
        "200": {"description": "Upstream's answer, passed through."},
        **{str(s): {"description": ERROR_MEANING[s]} for s in (400, 401, 403, 404, 429, 502, 504)},
    }
    return {
        method: {
            "tags": [tag],
            "summary": summary,
            "security": BEARER,
            "parameters": parameters,
            "responses": responses,
        }
        for method in ("get", "post", "put", "patch", "delete")
    }


def operation_id(method: str, template: str) -> str:
    """``post /rest/v1/mbox/{sessionId}`` -> ``postRestV1MboxBySessionId``."""
    words = []
    for segment in re.sub(r"[^A-Za-z0-9{}/]", "", template).split("/"):
        if segment.startswith("{"):
            name = segment.strip("{}")
            words.append("By" + name[:1].upper() + name[1:])
        elif segment:
            words.append(segment[:1].upper() + segment[1:])
    return method + "".join(words)


def document() -> dict[str, Any]:
    bulk_update = {
        "tags": ["profiles"],
        "summary": "Bulk profile update v2 (batch=<CSV>)",
        "security": BEARER,
        "parameters": [{"name": "client", "in": "path", "required": True, "schema": STRING}],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {"batch": STRING}}}
            },
        },
        "responses": answers("Batch submitted", 400, 401, 403, 413, 429, 502, media="application/xml"),
    }
    delivery_query = [
        {"name": "client", "in": "query", "schema": STRING},
        {"name": "imsOrgId", "in": "query", "schema": STRING},
        {"name": "sessionId", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 128}},
        {"name": "version", "in": "query", "schema": STRING},
    ]
    paths: dict[str, Any] = {
        "/rest/v1/mbox/{sessionId}": {
            "post": {
                "tags": ["delivery"],
                "summary": "Single mbox, in the client's session",
                "parameters": [SESSION_PATH, CLIENT_QUERY],
                "requestBody": json_body(ref("SingleMboxRequest")),
                "responses": answers("Content for the mbox", *DELIVERY_ERRORS, schema=ref("SingleMboxAnswer")),
            }
        },
        "/rest/v1/mbox": {
            "post": {
                "tags": ["delivery"],
                "summary": "Single mbox; the gateway supplies and keeps the visitor's session",
                "parameters": [CLIENT_QUERY],
                "requestBody": json_body(ref("SingleMboxRequest")),
                "responses": answers("Content for the mbox", *DELIVERY_ERRORS, schema=ref("SingleMboxAnswer")),
            }
        },
        "/rest/v2/batchmbox": {
            "post": {
                "tags": ["delivery"],
                "summary": "Batch mbox: several mboxes, prefetch and notifications",
                "requestBody": json_body(ref("BatchMboxRequest")),
                "responses": answers("Content for each mbox", *DELIVERY_ERRORS),
            }
        },
        "/rest/v1/delivery": {
            "post": {
                "tags": ["delivery"],
                "summary": "Delivery API: execute, prefetch, notifications",
                "parameters": delivery_query,
                "requestBody": json_body(ref("DeliveryRequest")),
                "responses": answers("Decisions and acknowledgements", *DELIVERY_ERRORS),
            }
        },
        "/rest/v1/profiles/{tntId}": {
            "get": {
                "tags": ["profiles"],
                "summary": "A visitor's profile by tntId",
                "parameters": [
                    {"name": "tntId", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}},
                    CLIENT_QUERY,
                ],
                "responses": answers("The profile", 400, 404, 502, 504),
            }
        },
        "/rest/v1/profiles/thirdPartyId/{thirdPartyId}": {
            "get": {
                "tags": ["profiles"],
                "summary": "A visitor's profile by thirdPartyId",
                "parameters": [
                    {
                        "name": "thirdPartyId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 128},
                    },
                    CLIENT_QUERY,
                ],
                "responses": answers("The profile", 400, 404, 502, 504),
            }
        },
        "/m2/{client}/profile/update": {
            method: {
                "tags": ["profiles"],
                "summary": "Single profile update (mboxPC or mbox3rdPartyId, profile.<name>=value)",
                "security": BEARER,
                "parameters": [
                    {"name": "client", "in": "path", "required": True, "schema": STRING},
                    {"name": "mboxPC", "in": "query", "schema": STRING},
                    {"name": "mbox3rdPartyId", "in": "query", "schema": STRING},
                ],
                "responses": answers("Submitted", 400, 401, 403, 502, 504, media="application/xml"),
            }
            for method in ("get", "post")
        },
        "/m2/{client}/v2/profile/batchUpdate": {"post": bulk_update},
        "/m2/{client}/profile/batchUpdate": {
            "post": {
                **bulk_update,
                "summary": "Bulk profile update v1 (batch=<CSV>): updates existing profiles, overall status",
            }
        },
        "/m2/{client}/v2/profile/batchStatus": {
            "get": {
                "tags": ["profiles"],
                "summary": "Status of a bulk batch, per row",
                "security": BEARER,
                "parameters": [
                    {"name": "client", "in": "path", "required": True, "schema": STRING},
                    {"name": "batchId", "in": "query", "required": True, "schema": STRING},
                ],
                "responses": answers("Batch status", 400, 401, 403, 404, 429, media="application/xml"),
            }
        },
        "/{tenant}/target/{path}": passthrough(
            "Target Admin API (activities, offers, audiences, ...)", "admin", [TENANT, REST_OF_PATH]
        ),
        "/data/{path}": passthrough(
            "Experience Platform: activation, segment and export jobs, external audiences (core/...), "
            "dataflow runs (foundation/flowservice/runs/...)",
            "platform",
            [REST_OF_PATH],
        ),
        "/healthz": {"get": {"tags": ["operations"], "summary": "Alive", "responses": answers("Alive")}},
        "/readyz": {
            "get": {
                "tags": ["operations"],
                "summary": "Ready, with the detail of each check",
                "responses": answers("Ready", 503),
            }
        },
        "/metrics": {
            "get": {
                "tags": ["operations"],
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Text format", "content": {"text/plain": {"schema": STRING}}}},
            }
        },
        "/openapi.json": {
            "get": {"tags": ["operations"], "summary": "This description", "responses": answers("OpenAPI")}
        },
        "/_proxy/": {
            "get": {
                "tags": ["operations"],
                "summary": "Status page (give the operator key as #key=... in the address)",
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": STRING}}}},
            }
        },
        "/_proxy/status": {
            "get": {
                "tags": ["operations"],
                "summary": "What the status page shows",
                "security": BEARER,
                "responses": answers("Status", 401, 403),
            }
        },
        "/_proxy/cache": {
            "get": {
                "tags": ["operations"],
                "summary": "Cache figures",
                "security": BEARER,
                "responses": answers("Cache", 401, 403),
            },
            "delete": {
                "tags": ["operations"],
                "summary": "Purge the cache (of one client)",
                "security": BEARER,
                "parameters": [{"name": "client", "in": "query", "schema": STRING}],
                "responses": answers("Purged", 400, 401, 403),
            },
        },
        "/_proxy/cache/visitors": {
            "delete": {
                "tags": ["operations"],
                "summary": "Purge one visitor's cached content",
                "security": BEARER,
                "parameters": [
                    CLIENT_QUERY,
                    {"name": "tntId", "in": "query", "schema": STRING},
                    {"name": "thirdPartyId", "in": "query", "schema": STRING},
                    {"name": "marketingCloudVisitorId", "in": "query", "schema": STRING},
                ],
                "responses": answers("Purged", 400, 401, 403),
            }
        },
        "/_proxy/cache/mboxes/{mbox}": {
            "delete": {
                "tags": ["operations"],
                "summary": "Purge one mbox's cached content",
                "security": BEARER,
                "parameters": [{"name": "mbox", "in": "path", "required": True, "schema": STRING}, CLIENT_QUERY],
                "responses": answers("Purged", 400, 401, 403),
            }
        },
        "/_proxy/queue": {
            "get": {
                "tags": ["operations"],
                "summary": "Notification queue figures",
                "security": BEARER,
                "responses": answers("Queue", 401, 403),
            }
        },
    }
    for template, operations in paths.items():
        for method, operation in operations.items():
            operation.setdefault("operationId", operation_id(method, template))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "target-proxy",
            "version": __version__,
            "description": "A gateway in front of Adobe Target's edge: drop-in delivery and profile paths, "
            "management API passthrough, and its own operations endpoints.",
        },
        "paths": paths,
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "clientKey": {"type": "http", "scheme": "bearer", "description": "A gateway client key"}
            },
        },
    }
