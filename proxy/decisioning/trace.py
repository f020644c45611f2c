"""The trace of on-device decisions, for a request that asks for one (``trace: {}``), as Adobe's engine
writes it: per mode (execute, prefetch), the activities whose rules held (``campaigns``, with the
notifications their executed decisions sent) and every activity whose rules were evaluated, with the
context they read and the conditions and audiences that matched and did not
(``evaluatedCampaignTargets``); the request being decided, the visitor's profile ids and the artifact."""

from __future__ import annotations

import copy
from typing import Any


def without_none(value: Any) -> Any:
    """The value as JSON would carry a JavaScript object: members without a value left out."""
    if isinstance(value, dict):
        return {key: without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_none(item) for item in value]
    return value


class RequestTracer:
    """One mode's trace: it accumulates over the mboxes and views decided in that mode."""

    def __init__(self, header: dict[str, Any], environment: Any) -> None:
        self.header = header  # clientCode, artifact, profile, sessionId
        self.environment = environment
        self.request: dict[str, Any] = {}
        self.campaigns: dict[Any, dict[str, Any]] = {}
        self.targets: dict[Any, dict[str, Any]] = {}

    def trace_request(self, mode: str, kind: str, details: dict[str, Any], context: dict[str, Any]) -> None:
        page = context["page"]
        self.request = {"pageURL": page.get("url"), "host": page.get("domain"), kind: {**details, "type": mode}}

    def rule_evaluated(self, rule: dict[str, Any], context: dict[str, Any], satisfied: bool) -> None:
        meta = rule.get("meta") or {}
        activity = meta.get("activity.id")
        if satisfied and activity not in self.campaigns:
            offer = meta.get("offer.id")
            self.campaigns[activity] = {
                "id": activity,
                "campaignType": meta.get("activity.type"),
                "branchId": meta.get("experience.id"),
                "offers": [offer] if offer is not None else [],
                "environment": self.environment,
            }
        target = self.targets.get(activity)
        if target is None:
            target = self.targets[activity] = {
                "context": without_none(copy.deepcopy(context)),
                "campaignId": activity,
                "campaignType": meta.get("activity.type"),
                "matchedSegmentIds": [],
                "unmatchedSegmentIds": [],
                "matchedRuleConditions": [],
                "unmatchedRuleConditions": [],
            }
        segments = target["matchedSegmentIds" if satisfied else "unmatchedSegmentIds"]
        for audience in meta.get("audience.ids") or ():
            if audience not in segments:
                segments.append(audience)
        target["matchedRuleConditions" if satisfied else "unmatchedRuleConditions"].append(rule.get("condition"))

    def notified(self, rule: dict[str, Any], notification: dict[str, Any]) -> None:
        activity = (rule.get("meta") or {}).get("activity.id")
        campaign = self.campaigns.get(activity)
        if campaign is not None:
            campaign.setdefault("notifications", []).append(notification)

    def result(self) -> dict[str, Any]:
        """The trace as it stands (a copy: later decisions of the mode add to the tracer, not to it)."""
        header = self.header
        return without_none(
            copy.deepcopy(
                {
                    "clientCode": header["clientCode"],
                    "artifact": header["artifact"],
                    "profile": header["profile"],
                    "request": {"sessionId": header["sessionId"], **self.request},
                    "campaigns": list(self.campaigns.values()),
                    "evaluatedCampaignTargets": list(self.targets.values()),
                }
            )
        )


def trace_header(
    client: str, request: dict[str, Any], session_id: str | None, artifact: dict[str, Any]
) -> dict[str, Any]:
    ids = request.get("id") or {}
    tnt = ids.get("tntId")
    parts: list[str | None] = [*tnt.split(".")] if isinstance(tnt, str) else []
    tnt_id, location = [*parts, None, None][:2]
    return {
        "clientCode": client,
        "artifact": artifact,
        "profile": {"visitorId": {**ids, "tntId": tnt_id, "profileLocation": location}},
        "sessionId": session_id,
    }
