"""The catalog's rules artifact, as Target publishes one for on-device decisioning
(``GET https://assets.adobetarget.com/<client>/<environment>/v1/[<propertyToken>/]rules.json``).

Each approved activity on an mbox gives one rule per location and experience, in the order the edge
decides them (priority, then location, then experience). A rule's condition is the activity's dates, the
location's audiences and the experience's allocation bounds (AB) or audiences (XT), in JsonLogic over what
an on-device engine knows of a visitor: mbox parameters, the page's address, geo and the time. Its
consequence is the offer with the experience's event tokens, which name no visitor (the edge counts a
notification for the visitor it comes with). An mbox any of whose activities needs what only the edge
knows (profile attributes, regular expressions, page domains, an experience without content) is left to
the edge whole (``remoteMboxes``), so that for any visitor the artifact decides as the edge does.

Geo is compared as the place is written, in lower case and in upper case (an engine's geo has no
lower-cased twin); mbox parameters and addresses through their ``_lc`` twins, as Target's own do.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from proxy.emulator.catalog import GLOBAL_MBOX, Catalog, parse_time
from proxy.emulator.decisioning import MAX_AUDIENCE_DEPTH, Decision, experience_shares
from proxy.emulator.rules import SOURCES
from proxy.emulator.tokens import EventToken, TokenCodec

Logic = Any  # a JsonLogic expression
VERSION = "1.0.0"
RESPONSE_TOKENS = ("activity.id", "activity.name", "experience.id", "experience.name", "offer.id", "offer.name")
PAGE_PARTS = {"url": "page.url", "path": "page.path", "query": "page.query"}
GEO_PARTS = {"country": "geo.country", "region": "geo.region", "city": "geo.city"}
NUMERIC = {"lessThan": "<", "lessThanOrEquals": "<=", "greaterThan": ">", "greaterThanOrEquals": ">="}
LITERAL = re.compile(r"[\w\s-]*")  # a regular expression that matches only itself


class EdgeOnly(Exception):
    """Something of an activity that no on-device engine can decide."""


def all_of(parts: list[Logic]) -> Logic:
    parts = [part for part in parts if part is not True]
    return True if not parts else parts[0] if len(parts) == 1 else {"and": parts}


def any_of(parts: list[Logic]) -> Logic:
    return False if not parts else parts[0] if len(parts) == 1 else {"or": parts}


def milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def number(value: Any) -> float | int | None:
    try:
        found = float(str(value))
    except ValueError:
        return None
    return int(found) if found.is_integer() else found


class Conditions:
    """Audiences and their rules as JsonLogic (raising EdgeOnly for what needs the edge)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.uses_geo = False

    def audiences(self, audience_ids: list[Any] | None, depth: int = 0) -> Logic:
        return all_of([self.audience(int(audience_id), depth) for audience_id in audience_ids or ()])

    def audience(self, audience_id: int, depth: int) -> Logic:
        audience = self.catalog.audiences.get(audience_id)
        if audience is None or depth > MAX_AUDIENCE_DEPTH:
            return False
        if audience.get("targetRule"):
            return self.rule(audience["targetRule"])
        if audience.get("audienceRule") is not None:
            return self.combination(audience["audienceRule"], depth + 1)
        return False

    def combination(self, rule: Any, depth: int) -> Logic:
        if isinstance(rule, int) and not isinstance(rule, bool):
            return self.audience(rule, depth)
        parts = rule if isinstance(rule, list) else rule.get("and") if isinstance(rule, dict) else None
        if isinstance(parts, list):
            return all_of([self.combination(part, depth) for part in parts])
        if isinstance(rule, dict) and "or" in rule:
            return any_of([self.combination(part, depth) for part in rule["or"]])
        if isinstance(rule, dict) and "not" in rule:
            return {"!": self.combination(rule["not"], depth)}
        return False

    def rule(self, rule: dict[str, Any]) -> Logic:
        if "and" in rule:
            return all_of([self.rule(part) for part in rule["and"]])
        if "or" in rule:
            return any_of([self.rule(part) for part in rule["or"]])
        if "not" in rule:
            return {"!": self.rule(rule["not"])}
        source = next((name for name in SOURCES if name in rule), None)
        if source is None:
            return False
        operator = next(key for key in rule if key != source)
        path, twin, present = self.variable(source, str(rule[source]))
        if operator == "exists":
            return present
        if operator == "notExists":
            return {"!": present}
        return all_of([present, self.compare(operator, path, twin, list(rule[operator] or []))])

    def variable(self, source: str, name: str) -> tuple[str, str | None, Logic]:
        """Where a rule's value is in an engine's context, its lower-cased twin, and its being there."""
        if source == "mbox" and not (".." in name or name.startswith(".") or name.endswith(".")):
            path = f"mbox.{name}"
            return path, f"{path}_lc", {"!=": [{"var": path}, None]}
        if source == "page" and name in PAGE_PARTS:
            path = PAGE_PARTS[name]
            return path, f"{path}_lc", {"!!": [{"var": "page.url"}]}
        if source == "geo" and name in GEO_PARTS:
            self.uses_geo = True
            path = GEO_PARTS[name]
            return path, None, {"!=": [{"var": path}, None]}
        raise EdgeOnly(f"{source} {name}")

    @staticmethod
    def compare(operator: str, path: str, twin: str | None, expected: list[Any]) -> Logic:
        if operator in NUMERIC or operator == "between":
            value = {"var": path}
            numbers = [number(each) for each in expected]
            if operator == "between":
                low, high = [*numbers, None, None][:2]
                test = False if low is None or high is None else {"<=": [low, value, high]}
            else:
                test = any_of([{NUMERIC[operator]: [value, each]} for each in numbers if each is not None])
            return all_of([{"!=": [value, ""]}, test])
        if operator == "matches":
            if not all(LITERAL.fullmatch(str(each)) for each in expected):
                raise EdgeOnly("regular expressions")
            operator = "equals"
        text = {"var": twin or path}
        if twin is not None:
            values = list(dict.fromkeys(str(each).lower() for each in expected))
        else:
            values = list(
                dict.fromkeys(case for each in expected for case in (str(each), str(each).lower(), str(each).upper()))
            )
        tests: dict[str, Callable[[str], Logic]] = {
            "equals": lambda each: {"==": [each, text]},
            "notEquals": lambda each: {"!=": [each, text]},
            "contains": lambda each: {"in": [each, text]},
            "notContains": lambda each: {"!": {"in": [each, text]}},
            "startsWith": lambda each: {"==": [{"substr": [text, 0, len(each)]}, each]},
            "endsWith": lambda each: {"==": [{"substr": [text, -len(each)]}, each]} if each else True,
        }
        if operator not in tests:
            raise EdgeOnly(operator)
        combine = all_of if operator in ("notEquals", "notContains") else any_of
        return combine([tests[operator](each) for each in values])


class Publisher:
    """The artifact of the catalog as it is now, built once per change of the catalog."""

    def __init__(self, catalog: Catalog, codec: TokenCodec) -> None:
        self.catalog = catalog
        self.codec = codec
        self._instance = uuid.uuid4().hex[:8]  # tags of another run of the emulator never match
        self._built: dict[str, tuple[int, bytes]] = {}

    def etag(self) -> str:
        return f'"{self._instance}-{self.catalog.version}"'

    def body(self, environment: str) -> bytes:
        built = self._built.get(environment)
        if built is None or built[0] != self.catalog.version:
            built = (self.catalog.version, orjson.dumps(self.document(environment)))
            self._built[environment] = built
        return built[1]

    def document(self, environment: str) -> dict[str, Any]:
        conditions = Conditions(self.catalog)
        rules: dict[str, list[dict[str, Any]]] = {}
        remote = []
        for mbox in self.catalog.known_mboxes():
            try:
                rules[mbox] = [
                    rule for a in self.catalog.approved_for(mbox) for rule in self.rules(a, mbox, conditions)
                ]
            except EdgeOnly:
                remote.append(mbox)
        return {
            "version": VERSION,
            "meta": {"clientCode": self.catalog.client, "environment": environment},
            "globalMbox": GLOBAL_MBOX,
            "geoTargetingEnabled": conditions.uses_geo,
            "responseTokens": list(RESPONSE_TOKENS),
            "remoteMboxes": remote,
            "remoteViews": [],
            "localMboxes": sorted(rules),
            "localViews": [],
            "rules": {"mboxes": rules, "views": {}},
        }

    def rules(self, activity: dict[str, Any], mbox: str, conditions: Conditions) -> list[dict[str, Any]]:
        now = {"var": "current_timestamp"}
        starts, ends = parse_time(activity.get("startsAt")), parse_time(activity.get("endsAt"))
        dates = [{"<=": [milliseconds(starts), now]}] if starts else []
        dates += [{"<=": [now, milliseconds(ends)]}] if ends else []
        if activity.get("type", "ab") == "xt":
            choices = [(e, conditions.audiences(e.get("audienceIds"))) for e in activity.get("experiences", [])]
        else:
            allocated = {"var": "allocation"}
            choices = [
                (
                    e,
                    {
                        "and": [
                            {"<=" if lower == 0 else "<": [number(lower), allocated]},
                            {">=": [number(upper), allocated]},
                        ]
                    },
                )
                for e, lower, upper in experience_shares(activity)
            ]
        found = []
        earlier: list[Logic] = []
        for location in activity.get("locations", {}).get("mboxes", []):
            if location["name"] != mbox:
                continue
            where = conditions.audiences(location.get("audienceIds"))
            placed = [*dates, *({"!": before} for before in earlier), where]
            earlier.append(where)
            for experience, chosen in choices:
                found.append(self.rule(activity, location, experience, all_of([*placed, chosen])))
        return found

    def rule(
        self, activity: dict[str, Any], location: dict[str, Any], experience: dict[str, Any], condition: Logic
    ) -> dict[str, Any]:
        mbox = location["name"]
        offer = next(
            (
                self.catalog.offers.get(int(placed.get("offerId", 0)))
                for placed in experience.get("offerLocations", [])
                if placed.get("locationLocalId") == location.get("locationLocalId")
            ),
            None,
        )
        if offer is None:
            raise EdgeOnly("an experience without content")
        decision = Decision(mbox, activity, experience, offer)
        metrics = []
        if decision.metric_on(mbox, "mbox_clicked") is not None:
            metrics.append({"type": "click", "eventToken": self.token("click", decision)})
        return {
            # the global mbox shows one activity, as the edge decides it: one key for all its rules
            "ruleKey": GLOBAL_MBOX if mbox == GLOBAL_MBOX else f"{decision.activity_id}",
            "activityId": decision.activity_id,
            "meta": {
                "activity.id": decision.activity_id,
                "activity.name": activity.get("name", ""),
                "activity.type": activity.get("type", "ab"),
                "experience.id": decision.experience_id,
                "experience.name": experience.get("name", ""),
                "location.name": mbox,
                "location.type": "mbox",
                "location.id": location.get("locationLocalId", 0),
                "audience.ids": [*location.get("audienceIds", []), *experience.get("audienceIds", [])],
                "offer.id": int(offer["id"]),
                "offer.name": offer.get("name", ""),
            },
            "condition": condition,
            "consequence": {
                "name": mbox,
                "options": [
                    {
                        "type": "json" if offer.get("type") == "json" else "html",
                        "eventToken": self.token("display", decision),
                        "content": offer["content"],
                    }
                ],
                "metrics": metrics,
            },
        }

    def token(self, kind: str, decision: Decision) -> str:
        return self.codec.encode(EventToken(kind, decision.activity_id, decision.experience_id, "", decision.mbox))
