"""The bodies of Experience Platform's external audience calls, checked as its documents describe them:
an audience to create (its fields, source, time to live, labels and tags) and the parts a PATCH changes."""

from __future__ import annotations

import copy
from typing import Any

from proxy.emulator import checks

FIELD_TYPES = frozenset({"string", "number", "long", "integer", "date", "datetime", "boolean"})
CLOUD_TYPES = frozenset({"S3", "DLZ", "GCS", "Azure", "SFTP"})
NEEDS_CONNECTION = frozenset({"S3", "GCS", "SFTP"})
DEFAULT_TTL_DAYS = 30


def strings(value: Any, where: str) -> list[str]:
    items = checks.optional_array(value, where)
    if not all(isinstance(item, str) for item in items):
        raise checks.fail(where, "must be an array of strings")
    return items


def ttl(value: Any) -> int:
    """1-90 days; the documented sample sends it as a string."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 90:
        raise checks.fail("ttlInDays", "must be a whole number of days from 1 to 90")
    return value


def fields(value: Any) -> list[dict[str, Any]]:
    items = checks.optional_array(value, "fields")
    if not items:
        raise checks.fail("fields", "at least one field is required")
    names: set[str] = set()
    for index, item in enumerate(items):
        where = f"fields[{index}]"
        checks.require_object(item, where)
        name = checks.text(item.get("name"), f"{where}.name", 256, required=True)
        if name in names:
            raise checks.fail(f"{where}.name", f"{name} is listed twice")
        names.add(name or "")
        if not checks.is_one_of(item.get("type"), FIELD_TYPES):
            raise checks.fail(f"{where}.type", f"must be one of {', '.join(sorted(FIELD_TYPES))}")
        checks.text(item.get("identityNs"), f"{where}.identityNs", 256)
        strings(item.get("labels"), f"{where}.labels")
    if not any(item.get("identityNs") for item in items):
        raise checks.fail("fields", "one field must carry the identity namespace (identityNs)")
    return copy.deepcopy(items)


def source_spec(value: Any) -> dict[str, Any]:
    spec = checks.optional_object(value, "sourceSpec")
    if spec is None:
        raise checks.fail("sourceSpec", "is required")
    if isinstance(spec.get("params"), dict):  # as Adobe's clients send it (aepp): the fields under "params"
        spec = spec["params"]
    path = checks.text(spec.get("path"), "sourceSpec.path", 1024, required=True)
    if path and any(char.isspace() for char in path):
        raise checks.fail("sourceSpec.path", "must not contain spaces")
    if spec.get("type") not in ("file", "folder"):
        raise checks.fail("sourceSpec.type", "must be file or folder")
    if spec.get("sourceType") not in (None, "Cloud Storage"):
        raise checks.fail("sourceSpec.sourceType", "must be Cloud Storage")
    # Optional: Adobe's own sample (aepp's) names the connection alone
    if spec.get("cloudType") is not None and not checks.is_one_of(spec.get("cloudType"), CLOUD_TYPES):
        raise checks.fail("sourceSpec.cloudType", f"must be one of {', '.join(sorted(CLOUD_TYPES))}")
    if spec.get("cloudType") in NEEDS_CONNECTION:
        checks.text(spec.get("baseConnectionId"), "sourceSpec.baseConnectionId", 256, required=True)
    return dict(spec)


def audience(body: Any) -> dict[str, Any]:
    body = checks.require_object(body)
    name = checks.text(body.get("name"), "name", 256, required=True)
    if body.get("originName") != "CUSTOM_UPLOAD":
        raise checks.fail("originName", "is required and must be CUSTOM_UPLOAD")
    if body.get("audienceType", "people") != "people":
        raise checks.fail("audienceType", "only people is supported")
    asked = {
        "name": name,
        "description": checks.text(body.get("description"), "description", 4096, blank_ok=True) or "",
        "customAudienceId": checks.text(body.get("customAudienceId"), "customAudienceId", 256),
        "fields": fields(body.get("fields")),
        "sourceSpec": source_spec(body.get("sourceSpec")),
        "ttlInDays": ttl(body.get("ttlInDays", DEFAULT_TTL_DAYS)),
        "audienceType": "people",
        "originName": "CUSTOM_UPLOAD",
        "namespace": checks.text(body.get("namespace"), "namespace", 256) or "CustomerAudienceUpload",
        "labels": strings(body.get("labels"), "labels"),
        "tags": strings(body.get("tags"), "tags"),
    }
    return {key: value for key, value in asked.items() if value is not None}
