"""Request validation by the tables of Target's delivery and profile documents.

Each check raises ``ApiError(400, ...)`` naming the offending field (``mboxes[2].parameters.x``), so a bad
request is refused before anything metered is spent. The bodies are checked by the schemas of
``proxy.api.schemas``, which also describe them in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.api.containers import Object
from proxy.api.fields import Invalid, Text, TntId, fail, refusal
from proxy.api.schemas import BATCH_REQUEST, DELIVERY_REQUEST, SINGLE_MBOX

MAX_PROFILE_ATTRIBUTES = 50


def checked(schema: Object, body: Any) -> dict[str, Any]:
    try:
        schema.check(body)
    except Invalid as error:
        raise refusal(error) from None
    return body


def single_mbox(body: Any) -> dict[str, Any]:
    """``POST /rest/v1/mbox/{sessionId}?client=C``: names given as numbers become the text they stand for."""
    return checked(SINGLE_MBOX, body)


def batch_mbox(body: Any) -> dict[str, Any]:
    """``POST /rest/v2/batchmbox``."""
    return checked(BATCH_REQUEST, body)


def delivery(body: Any) -> dict[str, Any]:
    """``POST /rest/v1/delivery``."""
    return checked(DELIVERY_REQUEST, body)


# --- Profile update: /m2/{client}/profile/update?mboxPC=...&profile.x=... ---------------------------

PROFILE_ID = TntId(128)
THIRD_PARTY_ID = Text(128)


def profile_update(query: Mapping[str, str]) -> tuple[str, str, dict[str, str]]:
    """Returns (identity kind, identity, attributes) for a single profile update."""
    if query.get("mboxPC"):
        kind, identity = "mboxPC", PROFILE_ID.at(query["mboxPC"], "mboxPC")
    elif query.get("mbox3rdPartyId"):
        kind, identity = "mbox3rdPartyId", THIRD_PARTY_ID.at(query["mbox3rdPartyId"], "mbox3rdPartyId")
    else:
        raise fail("mboxPC", "mboxPC or mbox3rdPartyId is required")
    attributes = {key[len("profile.") :]: value for key, value in query.items() if key.startswith("profile.")}
    if not attributes:
        raise fail("profile", "at least one profile.<name> parameter is required")
    if len(attributes) > MAX_PROFILE_ATTRIBUTES:
        raise fail("profile", f"size must be between 0 and {MAX_PROFILE_ATTRIBUTES}")
    for name, value in attributes.items():
        if not name or len(name) > 128:
            raise fail(f"profile.{name}", "name size must be between 1 and 128")
        if len(value) > 256:
            raise fail(f"profile.{name}", "size must be at most 256")
    return kind, identity, attributes
