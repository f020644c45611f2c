"""Keeping clients on the gateway while upstream keeps them on their edge.

Upstream answers carry an ``edgeHost`` of four dot-separated parts and tntIds with a ``.NN_M``
location suffix; Adobe's SDKs follow either straight to ``mboxedgeNN.tt.omtrdc.net``. On the way
out the gateway learns both into the visitor's record and removes them; on the way in it restores
the suffix and sends the request to the visitor's edge host.
"""

from __future__ import annotations

from typing import Any

from proxy.content.sessions import SessionRecord, SessionStore
from proxy.content.visitors import VisitorIds, split_location
from proxy.upstream import client_host

MAX_TNT_ID = 128


def edge_host_for(record: SessionRecord | None, client: str) -> str:
    if record is not None and record.edge_host:
        return record.edge_host
    return client_host(client)


def located_tnt_id(tnt_id: str, record: SessionRecord | None) -> str:
    """The tntId as upstream knows it: with the visitor's location suffix when the gateway has one."""
    base, location = split_location(tnt_id)
    location = location or (record.location if record is not None else None)
    located = f"{base}.{location}" if location else base
    # Upstream takes tntIds of at most 128 characters; without the hint it still finds the profile.
    return located if len(located) <= MAX_TNT_ID else base


def restore_ids(ids: dict[str, Any] | None, record: SessionRecord | None) -> None:
    """Put the location suffix back on an ``id`` object (or single mbox body) in place."""
    if ids and ids.get("tntId"):
        ids["tntId"] = located_tnt_id(str(ids["tntId"]), record)


def upstream_ids(record: SessionRecord, given: dict[str, Any] | None) -> dict[str, Any]:
    """The visitor's ``id`` object for a call the gateway makes on its behalf."""
    ids = {k: given[k] for k in ("thirdPartyId", "marketingCloudVisitorId", "customerIds") if given and given.get(k)}
    tnt_id = (given or {}).get("tntId") or record.tnt_id
    if tnt_id:
        ids["tntId"] = located_tnt_id(str(tnt_id), record)
    return ids


def learn_and_hide(
    answer: dict[str, Any],
    ids: dict[str, Any] | None,
    record: SessionRecord,
    sessions: SessionStore,
    client: str,
) -> None:
    """Learn the edge from an upstream answer, then strip what would lead a client around the gateway.

    ``ids`` is where the answer keeps the visitor's ids: the answer itself for the single mbox API, its
    ``id`` object for the batch and Delivery APIs.
    """
    location = None
    if ids and ids.get("tntId"):
        base, location = split_location(str(ids["tntId"]))
        ids["tntId"] = base
        record.tnt_id = base
        sessions.link(record, VisitorIds(tnt_id=base).keys(client))
    sessions.learn_edge(record, answer.pop("edgeHost", None), location)
