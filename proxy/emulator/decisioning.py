"""Choosing content: activities by priority, AB experiences by Target's allocation, XT by audience."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mmh3
import orjson

from proxy.emulator.catalog import Catalog
from proxy.emulator.rules import RuleContext, evaluate
from proxy.emulator.tokens import EventToken, TokenCodec

CLICKED_SUFFIX = "-clicked"
MAX_AUDIENCE_DEPTH = 16  # audienceRules nest; the Admin API refuses cycles, this bounds the rest


def allocation_bucket(client: str, activity_id: int, visitor: str) -> float:
    """A visitor's place in an activity, 0 to 99.99: MurmurHash3 (32 bits, seed 0) of the UTF-16 code units of
    ``<client>.<activityId>.<visitor>.0``, in 10,000 buckets, as Target allocates (on the edge and on device)."""
    digest = mmh3.hash(f"{client}.{activity_id}.{visitor}.0".encode("utf-16-le"), 0, signed=True)
    return abs(digest) % 10_000 / 100


def experience_shares(activity: dict[str, Any]) -> list[tuple[dict[str, Any], float, float]]:
    """An AB activity's experiences with the allocations each takes: the first from 0 to its share
    inclusive, each next one above the last's upper bound up to its own (an even share when unset)."""
    experiences = activity.get("experiences", [])
    even_share = 100.0 / len(experiences) if experiences else 0.0
    shares, lower = [], 0.0
    for experience in experiences:
        upper = lower + float(experience.get("visitorPercentage", even_share))
        shares.append((experience, lower, upper))
        lower = upper
    return shares


@dataclass(slots=True)
class Decision:
    mbox: str
    activity: dict[str, Any] | None = None
    experience: dict[str, Any] | None = None
    offer: dict[str, Any] | None = None

    @property
    def activity_id(self) -> int:
        return int(self.activity["id"]) if self.activity else 0

    @property
    def experience_id(self) -> int:
        return int(self.experience.get("experienceLocalId", 0)) if self.experience else 0

    def metric_on(self, mbox: str, event: str) -> dict[str, Any] | None:
        """The activity's metric counting ``event`` (mbox_shown / mbox_clicked) on ``mbox``, if any."""
        for metric in (self.activity or {}).get("metrics", []):
            for target in metric.get("mboxes", []):
                if target.get("name") == mbox and target.get("successEvent") == event:
                    return metric
        return None


class Decider:
    def __init__(self, catalog: Catalog, codec: TokenCodec) -> None:
        self.catalog = catalog
        self.codec = codec

    def _audiences_match(self, audience_ids: list[Any] | None, context: RuleContext) -> bool:
        return all(self._audience_matches(int(audience_id), context) for audience_id in audience_ids or ())

    def _audience_matches(self, audience_id: int, context: RuleContext, depth: int = 0) -> bool:
        audience = self.catalog.audiences.get(audience_id)
        if audience is None or depth > MAX_AUDIENCE_DEPTH:
            return False
        if audience.get("targetRule"):
            return evaluate(audience["targetRule"], context)
        if audience.get("audienceRule") is not None:
            return self._combination(audience["audienceRule"], context, depth + 1)
        return False

    def _combination(self, rule: Any, context: RuleContext, depth: int) -> bool:
        """An audienceRule: audience ids combined with and / or / not (a bare array is and)."""
        if isinstance(rule, int) and not isinstance(rule, bool):
            return self._audience_matches(rule, context, depth)
        if isinstance(rule, list):
            return all(self._combination(part, context, depth) for part in rule)
        if isinstance(rule, dict) and "and" in rule:
            return all(self._combination(part, context, depth) for part in rule["and"])
        if isinstance(rule, dict) and "or" in rule:
            return any(self._combination(part, context, depth) for part in rule["or"])
        if isinstance(rule, dict) and "not" in rule:
            return not self._combination(rule["not"], context, depth)
        return False

    def _experience(self, activity: dict[str, Any], visitor: str, context: RuleContext) -> dict[str, Any] | None:
        experiences = activity.get("experiences", [])
        if activity.get("type", "ab") == "xt":
            return next((e for e in experiences if self._audiences_match(e.get("audienceIds"), context)), None)
        bucket = allocation_bucket(self.catalog.client, int(activity["id"]), visitor)
        return next((experience for experience, _, upper in experience_shares(activity) if bucket <= upper), None)

    def decide(self, mbox: str, visitor: str, context: RuleContext) -> Decision:
        for activity in self.catalog.activities_for(mbox):
            locations = [m for m in activity.get("locations", {}).get("mboxes", []) if m["name"] == mbox]
            location = next((m for m in locations if self._audiences_match(m.get("audienceIds"), context)), None)
            if location is None:
                continue
            experience = self._experience(activity, visitor, context)
            if experience is None:
                continue
            offer = None
            for offer_location in experience.get("offerLocations", []):
                if offer_location.get("locationLocalId") == location.get("locationLocalId"):
                    offer = self.catalog.offers.get(int(offer_location.get("offerId", 0)))
                    break
            return Decision(mbox, activity, experience, offer)
        return Decision(mbox)

    def activities_measuring(self, mbox: str, event: str, visitor: str, context: RuleContext) -> list[Decision]:
        """Decisions of every live activity that counts ``event`` on ``mbox`` for this visitor."""
        found = []
        for activity in self.catalog.activities.values():
            if activity.get("state", "approved") != "approved":
                continue
            probe = Decision(mbox, activity)
            if probe.metric_on(mbox, event) is None:
                continue
            experience = self._experience(activity, visitor, context)
            if experience is not None:
                found.append(Decision(mbox, activity, experience))
        return found

    # --- rendering -------------------------------------------------------------------------------------

    def token(self, kind: str, decision: Decision, visitor: str) -> str:
        return self.codec.encode(EventToken(kind, decision.activity_id, decision.experience_id, visitor, decision.mbox))

    @staticmethod
    def response_tokens(decision: Decision) -> dict[str, Any]:
        activity, experience, offer = decision.activity or {}, decision.experience or {}, decision.offer or {}
        return {
            "activity.id": str(activity.get("id", "")),
            "activity.name": activity.get("name", ""),
            "experience.id": str(experience.get("experienceLocalId", "")),
            "experience.name": experience.get("name", ""),
            "offer.id": str(offer.get("id", "")),
            "offer.name": offer.get("name", ""),
        }

    def options(self, decision: Decision, visitor: str, *, with_token: bool) -> list[dict[str, Any]]:
        if decision.offer is None:
            return []
        is_json = decision.offer.get("type") == "json"
        option: dict[str, Any] = {"type": "json" if is_json else "html", "content": decision.offer["content"]}
        if with_token:
            option["eventToken"] = self.token("display", decision, visitor)
        option["responseTokens"] = self.response_tokens(decision)
        return [option]

    def metrics(self, decision: Decision, visitor: str) -> list[dict[str, Any]]:
        if decision.metric_on(decision.mbox, "mbox_clicked") is None:
            return []
        return [{"type": "click", "eventToken": self.token("click", decision, visitor)}]

    @staticmethod
    def text_content(decision: Decision, as_json: bool = False) -> Any:
        """Content for the single and batch mbox APIs, which answer plain content."""
        if decision.offer is None:
            return ""
        content = decision.offer["content"]
        if isinstance(content, str) or as_json:
            return content
        return orjson.dumps(content).decode()
