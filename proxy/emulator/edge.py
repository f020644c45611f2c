"""The edge's delivery logic for the single mbox, batch mbox and Delivery APIs, and the profile APIs."""

from __future__ import annotations

import re
import time
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from proxy.emulator import checks, tables
from proxy.emulator.catalog import GLOBAL_MBOX, Catalog
from proxy.emulator.decisioning import CLICKED_SUFFIX, Decider, Decision
from proxy.emulator.errors import EdgeError
from proxy.emulator.profiles import Profile, ProfileStore, split_tnt_id
from proxy.emulator.rules import RuleContext
from proxy.emulator.stats import Stats
from proxy.emulator.tokens import EventToken, TokenCodec, TokenError

EDGE_HOST = re.compile(r"^mboxedge(\d{1,2})\.tt\.omtrdc\.net(?::\d+)?$", re.IGNORECASE)
FUTURE_TOLERANCE_MS = 24 * 3600 * 1000


@dataclass(slots=True)
class Call:
    """Where a request landed: the edge cluster (from the Host header) and the visitor's session."""

    cluster: int
    session_id: str | None = None


class Edge:
    def __init__(self, catalog: Catalog, profiles: ProfileStore, codec: TokenCodec, clusters: list[int]) -> None:
        self.catalog = catalog
        self.profiles = profiles
        self.codec = codec
        self.decider = Decider(catalog, codec)
        self.clusters = clusters
        self.stats = Stats()

    def cluster_for(self, host: str | None, routing_key: str | None) -> int:
        """An ``mboxedgeNN`` host names its cluster; the client host lands on one chosen by session."""
        match = EDGE_HOST.match(host or "")
        if match:
            return int(match.group(1))
        return self.clusters[zlib.crc32((routing_key or "").encode()) % len(self.clusters)]

    # --- shared steps --------------------------------------------------------------------------------

    def _visitor(self, call: Call, ids: dict[str, Any]) -> tuple[Profile, bool]:
        profile, created = self.profiles.resolve(
            call.cluster,
            tnt_id=ids.get("tntId"),
            third_party_id=ids.get("thirdPartyId"),
            marketing_cloud_visitor_id=ids.get("marketingCloudVisitorId"),
        )
        assert profile is not None
        return profile, created

    @staticmethod
    def _allocated(profile: Profile, ids: dict[str, Any]) -> str:
        """Whom a request's decisions are allocated to, as Target picks it (on device too): the Experience
        Cloud id, else the tntId without its location hint, else the third-party id; else the new profile's."""
        tnt_id = ids.get("tntId")
        tnt_id = split_tnt_id(str(tnt_id))[0] if tnt_id else None
        return str(ids.get("marketingCloudVisitorId") or tnt_id or ids.get("thirdPartyId") or profile.tnt_id)

    def _context(
        self,
        profile: Profile,
        call: Call,
        params: dict[str, Any] | None,
        page_url: str | None,
        geo: dict[str, str],
    ) -> RuleContext:
        return RuleContext(
            profile=self.profiles.view(profile, call.cluster), mbox=params or {}, page_url=page_url, geo=geo
        )

    def _geo(self, ip: str | None, given: dict[str, Any] | None = None) -> dict[str, str]:
        geo = dict(self.catalog.geo.get(ip or "", {}))
        given = given or {}
        for source, name in (("countryCode", "country"), ("stateCode", "region"), ("city", "city")):
            if given.get(source):
                geo[name] = str(given[source])
        return geo

    def _count_shown(self, decision: Decision, visitor: str, impression_id: str | None, ctx: RuleContext) -> None:
        if decision.activity is not None:
            self.stats.impression(decision.activity_id, decision.experience_id, visitor, impression_id)
        for measured in self.decider.activities_measuring(decision.mbox, "mbox_shown", visitor, ctx):
            self.stats.activity_event(measured.activity_id, "conversions", measured.experience_id)

    def _count_clicked(self, mbox: str, visitor: str, ctx: RuleContext) -> None:
        for measured in self.decider.activities_measuring(mbox, "mbox_clicked", visitor, ctx):
            self.stats.activity_event(measured.activity_id, "clicks", measured.experience_id)
            if (measured.metric_on(mbox, "mbox_clicked") or {}).get("conversion"):
                self.stats.activity_event(measured.activity_id, "conversions", measured.experience_id)

    def _decode_tokens(self, tokens: Iterable[Any], field: str) -> list[EventToken]:
        decoded = []
        for position, token in enumerate(tokens):
            try:
                decoded.append(self.codec.decode(str(token)))
            except TokenError:
                raise EdgeError(400, f"{field}[{position}]: invalid event token", f"{field}[{position}]") from None
        return decoded

    def _notify(
        self,
        kind: str,
        tokens: list[EventToken],
        notification_id: str | None,
        impression_id: str | None,
        visitor: str,
    ) -> None:
        """Count a notification once; a token of the rules artifact names no visitor (it is the same for
        every visitor shown the experience): the request's is the one counted."""
        if not self.stats.first_notification(notification_id):
            return
        if kind == "click":
            self.stats.click += 1
        else:
            self.stats.display += 1
        for token in tokens:
            if token.kind not in ("display", "click"):
                continue  # a prefetch state token names a decision, not an event
            if token.kind == "click" or kind == "click":
                self.stats.activity_event(token.activity_id, "clicks", token.experience_id)
                activity = self.catalog.activities.get(token.activity_id)
                metric = Decision(token.mbox, activity).metric_on(token.mbox, "mbox_clicked") if activity else None
                if metric and metric.get("conversion"):
                    self.stats.activity_event(token.activity_id, "conversions", token.experience_id)
            else:
                self.stats.impression(token.activity_id, token.experience_id, token.visitor or visitor, impression_id)

    @staticmethod
    def _ids_answer(profile: Profile, ids: dict[str, Any], *, always_tnt: bool) -> dict[str, str]:
        answer = {}
        # "If no thirdPartyId was provided, a new tntId is generated and returned" (a marketingCloudVisitorId
        # alone gets one too).
        if always_tnt or ids.get("tntId") or not ids.get("thirdPartyId"):
            answer["tntId"] = profile.located_tnt_id
        if ids.get("thirdPartyId"):
            answer["thirdPartyId"] = ids["thirdPartyId"]
        if ids.get("marketingCloudVisitorId"):
            answer["marketingCloudVisitorId"] = ids["marketingCloudVisitorId"]
        return answer

    # --- POST /rest/v1/mbox/{sessionId} --------------------------------------------------------------

    def single_mbox(self, call: Call, body: Any) -> dict[str, Any]:
        tables.single_mbox(body)
        profile, _ = self._visitor(call, body)
        if body.get("profileParameters"):
            self.profiles.write(profile, body["profileParameters"], call.cluster)
        location = body.get("requestLocation") or {}
        ctx = self._context(
            profile,
            call,
            body.get("mboxParameters"),
            location.get("pageURL"),
            self._geo(location.get("ipAddress")),
        )
        name, visitor = body["mbox"], self._allocated(profile, body)
        clicked = checks.boolean_flag(body.get("clicked"), "clicked") or name.endswith(CLICKED_SUFFIX)
        name = name.removesuffix(CLICKED_SUFFIX)
        self.stats.mbox_requested(name, body.get("mboxParameters"))
        self.stats.decisions += 1
        decision = self.decider.decide(name, visitor, ctx)
        if clicked:
            self._count_clicked(name, visitor, ctx)
        else:
            self._count_shown(decision, visitor, location.get("impressionId"), ctx)
        answer: dict[str, Any] = self._ids_answer(profile, body, always_tnt=False)
        answer["edgeHost"] = profile.edge_host
        answer["content"] = self.decider.text_content(decision)
        answer["sessionId"] = call.session_id
        if checks.boolean_flag(body.get("mboxTrace"), "mboxTrace"):
            answer["mboxTrace"] = {
                "cluster": call.cluster,
                "profile": ctx.profile,
                "decision": self.decider.response_tokens(decision),
            }
        return answer

    # --- POST /rest/v2/batchmbox -------------------------------------------------------------------------

    def batch_mbox(self, call: Call, body: Any) -> dict[str, Any]:
        tables.batch_mbox(body)
        notes = [
            (note, self._decode_tokens(note.get("eventTokens") or [], f"notifications[{i}].eventTokens"))
            for i, note in enumerate(body.get("notifications") or [])
        ]
        ids = body.get("id") or {}
        profile, _ = self._visitor(call, ids)
        if body.get("profileParameters"):
            self.profiles.write(profile, body["profileParameters"], call.cluster)
        visitor, as_json = self._allocated(profile, ids), bool(body.get("contentAsJson"))
        if body.get("mboxes") or body.get("prefetch"):
            self.stats.decisions += 1
        for note, tokens in notes:
            kind = "click" if str(note.get("mbox", "")).endswith(CLICKED_SUFFIX) else "display"
            self._notify(kind, tokens, note.get("id"), note.get("impressionId"), visitor)
        executed = []
        for entry in body.get("mboxes") or []:
            name = entry["mbox"]
            ctx = self._context(profile, call, entry.get("parameters"), None, {})
            self.stats.mbox_requested(name.removesuffix(CLICKED_SUFFIX), entry.get("parameters"))
            if name.endswith(CLICKED_SUFFIX):
                base = name[: -len(CLICKED_SUFFIX)]
                self._count_clicked(base, visitor, ctx)
                executed.append({"indexId": entry["indexId"], "mbox": name, "content": ""})
                continue
            decision = self.decider.decide(name, visitor, ctx)
            self._count_shown(decision, visitor, None, ctx)
            content = self.decider.text_content(decision, as_json)
            executed.append({"indexId": entry["indexId"], "mbox": name, "content": content})
        prefetched = []
        for entry in body.get("prefetch") or []:
            ctx = self._context(profile, call, entry.get("parameters"), None, {})
            self.stats.mbox_requested(entry["mbox"], entry.get("parameters"))
            decision = self.decider.decide(entry["mbox"], visitor, ctx)
            answer = {
                "indexId": entry["indexId"],
                "mbox": entry["mbox"],
                "content": self.decider.text_content(decision, as_json),
            }
            if decision.activity is not None:
                answer["eventTokens"] = [self.decider.token("display", decision, visitor)]
            prefetched.append(answer)
        result: dict[str, Any] = {
            "requestId": str(uuid.uuid4()),
            "client": body["client"],
            "id": self._ids_answer(profile, ids, always_tnt=True),
            "edgeHost": profile.edge_host,
            "contentAsJson": as_json,
        }
        if executed:
            result["mboxResponses"] = executed
        if prefetched:
            result["prefetchResponses"] = prefetched
        return result

    # --- POST /rest/v1/delivery ----------------------------------------------------------------------

    def delivery(self, call: Call, client: str, body: Any) -> dict[str, Any]:
        tables.delivery(body)
        telemetry = body.get("telemetry")
        entries = telemetry.get("entries") if isinstance(telemetry, dict) else None
        if isinstance(entries, list):
            self.stats.telemetry_entries += len(entries)
        now_ms = time.time() * 1000
        notes = []
        for i, note in enumerate(body.get("notifications") or []):
            if note["timestamp"] > now_ms + FUTURE_TOLERANCE_MS:
                raise EdgeError(400, f"notifications[{i}].timestamp: is in the future", f"notifications[{i}].timestamp")
            notes.append((note, self._decode_tokens(note.get("tokens") or [], f"notifications[{i}].tokens")))
        ids = body.get("id") or {}
        profile, _ = self._visitor(call, ids)
        context = body.get("context") or {}
        page_url = (context.get("address") or {}).get("url")
        geo = self._geo((context.get("geo") or {}).get("ipAddress"), context.get("geo"))
        for section in ("execute", "prefetch"):
            part = body.get(section) or {}
            for details in [part.get("pageLoad") or {}, *(part.get("mboxes") or [])]:
                if details.get("profileParameters"):
                    self.profiles.write(profile, details["profileParameters"], call.cluster)
        visitor = self._allocated(profile, ids)
        if body.get("execute") or body.get("prefetch"):
            self.stats.decisions += 1
        impression_id = body.get("impressionId")

        def ctx_for(details: dict[str, Any]) -> RuleContext:
            self.stats.mbox_requested(
                details.get("name", GLOBAL_MBOX).removesuffix(CLICKED_SUFFIX), details.get("parameters")
            )
            url = (details.get("address") or {}).get("url") or page_url
            return self._context(profile, call, details.get("parameters"), url, geo)

        result: dict[str, Any] = {
            "status": 200,
            "requestId": body.get("requestId") or str(uuid.uuid4()),
            "client": client,
            "id": self._ids_answer(profile, ids, always_tnt=True),
            "edgeHost": profile.edge_host,
        }
        execute = body.get("execute") or {}
        if execute:
            executed: dict[str, Any] = {}
            if execute.get("pageLoad") is not None:
                ctx = ctx_for(execute["pageLoad"])
                decision = self.decider.decide(GLOBAL_MBOX, visitor, ctx)
                self._count_shown(decision, visitor, impression_id, ctx)
                executed["pageLoad"] = {
                    "options": self.decider.options(decision, visitor, with_token=False),
                    "metrics": self.decider.metrics(decision, visitor),
                }
            if execute.get("mboxes"):
                executed["mboxes"] = []
                for entry in execute["mboxes"]:
                    ctx = ctx_for(entry)
                    name = entry["name"]
                    if name.endswith(CLICKED_SUFFIX):
                        self._count_clicked(name[: -len(CLICKED_SUFFIX)], visitor, ctx)
                        executed["mboxes"].append({"index": entry["index"], "name": name})
                        continue
                    decision = self.decider.decide(name, visitor, ctx)
                    self._count_shown(decision, visitor, impression_id, ctx)
                    executed["mboxes"].append(
                        {
                            "index": entry["index"],
                            "name": name,
                            "options": self.decider.options(decision, visitor, with_token=False),
                            "metrics": self.decider.metrics(decision, visitor),
                        }
                    )
            result["execute"] = executed
        prefetch = body.get("prefetch") or {}
        if prefetch:
            fetched: dict[str, Any] = {}
            if prefetch.get("pageLoad") is not None:
                decision = self.decider.decide(GLOBAL_MBOX, visitor, ctx_for(prefetch["pageLoad"]))
                fetched["pageLoad"] = {
                    "options": self.decider.options(decision, visitor, with_token=True),
                    "metrics": self.decider.metrics(decision, visitor),
                }
            if prefetch.get("views") is not None:
                fetched["views"] = []
            if prefetch.get("mboxes"):
                fetched["mboxes"] = []
                for entry in prefetch["mboxes"]:
                    decision = self.decider.decide(entry["name"], visitor, ctx_for(entry))
                    fetched["mboxes"].append(
                        {
                            "index": entry["index"],
                            "name": entry["name"],
                            "state": self.decider.token("state", decision, visitor),
                            "options": self.decider.options(decision, visitor, with_token=True),
                            "metrics": self.decider.metrics(decision, visitor),
                        }
                    )
            result["prefetch"] = fetched
        if notes:
            for note, tokens in notes:
                self._notify(note["type"], tokens, note["id"], note.get("impressionId"), visitor)
            result["notifications"] = [{"id": note["id"]} for note, _ in notes]
        return result

    # --- profiles ------------------------------------------------------------------------------------

    def fetch_profile(
        self, call: Call, client: str, *, tnt_id: str | None = None, third_party_id: str | None = None
    ) -> dict[str, Any]:
        if tnt_id is not None:
            profile = self.profiles.by_tnt_id(tnt_id)
            missing = f"No profile found for client {client} with mboxPC={tnt_id}"
        else:
            assert third_party_id is not None
            profile = self.profiles.by_third_party_id(third_party_id)
            missing = f"No profile found for client {client} with third party id={third_party_id}"
        if profile is None:
            raise EdgeError(404, missing)
        return self.profiles.document(profile, client, call.cluster)

    def update_profile(self, call: Call, query: dict[str, str]) -> bool:
        """Single profile update; updates only, never creates. True when a profile was found."""
        kind, identity, attributes = tables.profile_update(query)
        profile = self.profiles.by_tnt_id(identity) if kind == "mboxPC" else self.profiles.by_third_party_id(identity)
        if profile is None:
            return False
        self.profiles.write(profile, attributes, call.cluster)
        return True
