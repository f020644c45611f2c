"""Deciding a Delivery API request on device, from a rules artifact, as Adobe's decisioning engine does.

For each executed or prefetched mbox the first rule whose condition holds gives its consequence (every
rule that holds, for the global mbox and views); a page load is the global mbox's; a view request without
a name asks for every view. Executed decisions yield the display notifications that count them (the caller
queues them); prefetched ones carry their event tokens. Every option carries the artifact's response
tokens; campaign macros (``${activity.name}``, ``${mbox.name}``...) are filled in. The answer's status is
206 when some mbox or view of the request only the edge can decide (``remoteMboxes`` / ``remoteViews``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.decisioning.artifact import Artifact
from proxy.decisioning.context import allocation, mbox_context, page_context, request_context, visitor_id
from proxy.decisioning.trace import RequestTracer, trace_header

Rule = dict[str, Any]
PostProcess = Callable[[Rule, dict[str, Any], str, dict[str, Any]], dict[str, Any]]

META_TOKENS = (
    "activity.id",
    "activity.name",
    "activity.type",
    "experience.id",
    "experience.name",
    "location.id",
    "location.name",
    "location.type",
    "offer.id",
    "offer.name",
    "option.id",
    "option.name",
)
GEO_TOKENS = (
    ("geo.city", "city"),
    ("geo.country", "country"),
    ("geo.state", "region"),
    ("geo.latitude", "latitude"),
    ("geo.longitude", "longitude"),
)
MACRO = re.compile(r"\$\{([a-zA-Z0-9_.]*?)\}")
MACRO_RENAMES = re.compile("campaign|recipe", re.I)
RENAMED = {"campaign": "activity", "recipe": "experience"}


@dataclass
class Decided:
    """A Delivery API answer decided on device, and the display notifications of what it executed."""

    response: dict[str, Any]
    notifications: list[dict[str, Any]] = field(default_factory=list)


def new_id() -> str:
    """A new id (request, notification, impression, visitor): 128 random bits in hex, as a uuid4's."""
    return secrets.token_hex(16)


def valid_ids(ids: dict[str, Any] | None) -> dict[str, Any]:
    """The request's visitor ids; a new tntId when it has none of them (as Adobe's engine makes one)."""
    ids = dict(ids or {})
    authenticated = [
        customer
        for customer in ids.get("customerIds") or ()
        if isinstance(customer, dict) and customer.get("authenticatedState") == "authenticated"
    ]
    if not (ids.get("tntId") or ids.get("marketingCloudVisitorId") or authenticated or ids.get("thirdPartyId")):
        ids["tntId"] = new_id()
    return ids


def decide(
    artifact: Artifact,
    client: str,
    request: dict[str, Any],
    now_ms: int,
    session_id: str | None = None,
    artifact_trace: dict[str, Any] | None = None,
    remote: tuple[list[str], list[str]] | None = None,
) -> Decided:
    """``request`` with its geo already resolved (``context.geo``); ``session_id`` and ``artifact_trace``
    (where the artifact came from) for the trace a request may ask for; ``remote``: the artifact's
    ``remote_needs`` of the request, when already known."""
    request = {**request, "id": valid_ids(request.get("id")), "requestId": request.get("requestId") or new_id()}
    decision = Decision(artifact, client, request, now_ms)
    if request.get("trace") is not None:
        about = artifact_trace if artifact_trace is not None else {"artifactVersion": artifact.version, **artifact.meta}
        decision.trace = trace_header(client, request, session_id, about)
    return decision.run(remote if remote is not None else artifact.remote_needs(request))


class Decision:
    def __init__(self, artifact: Artifact, client: str, request: dict[str, Any], now_ms: int) -> None:
        self.artifact = artifact
        self.client = client
        self.request = request
        self.now_ms = now_ms
        self.trace: dict[str, Any] | None = None  # the trace's header, when the request asks for one
        self.tracer: RequestTracer | None = None  # the trace of the mode being decided
        self.context = request_context(request, now_ms)
        self.visitor = visitor_id(request["id"]) or new_id()
        self.property_token = (request.get("property") or {}).get("token")
        self.notifications: list[dict[str, Any]] = []
        self._counted: set[str] = set()
        self.add_tokens = response_tokens(self.context, artifact.response_tokens)
        self._details_of: dict[str, Any] | None = None  # the mbox whose context is kept
        self._details_context: dict[str, Any] = {}

    def run(self, remote: tuple[list[str], list[str]]) -> Decided:
        remote_mboxes, remote_views = remote
        response: dict[str, Any] = {
            "status": 206 if remote_mboxes or remote_views else 200,
            "remoteMboxes": remote_mboxes,
            "remoteViews": remote_views,
            "requestId": self.request["requestId"],
            "id": dict(self.request["id"]),
            "client": self.client,
        }
        common: list[PostProcess] = [self.add_tokens, replace_macros, self.add_trace]
        execute = self.decisions("execute", [self.notify, prepare_execute, *common])
        if execute is not None:
            response["execute"] = execute
        prefetch = self.decisions("prefetch", [prepare_prefetch, *common])
        if prefetch is not None:
            response["prefetch"] = prefetch
        return Decided(response, self.notifications)

    # --- one mode (execute or prefetch) -------------------------------------------------------------------

    def decisions(self, mode: str, steps: list[PostProcess]) -> dict[str, Any] | None:
        section = self.request.get(mode)
        if section is None:
            return None
        if self.trace is not None:
            self.tracer = RequestTracer(self.trace, self.artifact.meta.get("environment"))
        answer: dict[str, Any] = {}
        if section.get("mboxes"):
            answer["mboxes"] = [found for mbox in section["mboxes"] for found in self.mbox(mbox, steps, mode)]
        if section.get("views"):
            answer["views"] = [found for view in section["views"] for found in self.views(view, steps, mode)]
        if section.get("pageLoad") is not None:
            answer["pageLoad"] = self.page_load(section["pageLoad"], steps, mode)
        return answer

    def mbox(self, details: dict[str, Any], steps: list[PostProcess], mode: str) -> list[dict[str, Any]]:
        name = details.get("name")
        if self.tracer is not None:
            self.tracer.trace_request(mode, "mbox", details, self.context)
        is_global = name == self.artifact.global_mbox
        found: list[dict[str, Any]] = []
        matched: set[Any] = set()
        for rule in self.rules(self.artifact.mbox_rules.get(str(name)) or ()):
            if is_global and rule.get("ruleKey") in matched:
                continue
            consequence = self.evaluate(rule, "mbox", details, steps)
            if consequence is not None:
                found.append(consequence)
                matched.add(rule.get("ruleKey"))
                if not is_global:
                    break
        if not is_global and not found:
            blank = {"name": name, **({"index": details["index"]} if "index" in details else {})}
            if self.tracer is not None:
                blank["trace"] = self.tracer.result()
            found.append(blank)
        return found

    def views(self, details: dict[str, Any], steps: list[PostProcess], mode: str) -> list[dict[str, Any]]:
        if self.tracer is not None:
            self.tracer.trace_request(mode, "view", details, self.context)
        if details.get("name") is not None:
            rules = self.artifact.view_rules.get(str(details["name"])) or []
        else:
            rules = [rule for view in self.artifact.view_rules.values() for rule in view]
        shown: dict[Any, dict[str, Any]] = {}
        matched: set[Any] = set()
        for rule in self.rules(rules):
            if rule.get("ruleKey") in matched:
                continue
            consequence = self.evaluate(rule, "view", details, steps)
            if consequence is None:
                continue
            matched.add(rule.get("ruleKey"))
            name = consequence.get("name")
            earlier = shown.get(name)
            if earlier is None:
                shown[name] = consequence
            else:
                earlier["options"] = [*earlier.get("options", []), *consequence.get("options", [])]
                earlier["metrics"] = [*earlier.get("metrics", []), *consequence.get("metrics", [])]
        return list(shown.values())

    def page_load(self, details: dict[str, Any], steps: list[PostProcess], mode: str) -> dict[str, Any]:
        traces: list[Any] = []

        def keep_trace(rule: Rule, shown: dict[str, Any], kind: str, details: dict[str, Any]) -> dict[str, Any]:
            traces.append(shown.get("trace"))
            return shown

        found = self.mbox(
            {**details, "name": self.artifact.global_mbox}, [*steps, keep_trace, without_page_attributes], mode
        )
        result: dict[str, Any] = {"options": [option for each in found for option in each.get("options") or ()]}
        if traces and traces[-1] is not None:
            result["trace"] = traces[-1]
        metrics: dict[Any, dict[str, Any]] = {}
        for each in found:
            for metric in each.get("metrics") or ():
                metrics[metric.get("eventToken")] = metric
        if metrics:
            result["metrics"] = list(metrics.values())
        return result

    def rules(self, rules: Any) -> list[Rule]:
        token = self.property_token
        return [
            rule
            for rule in rules
            if not rule.get("propertyTokens") or (token is not None and token in rule["propertyTokens"])
        ]

    def evaluate(
        self, rule: Rule, kind: str, details: dict[str, Any], steps: list[PostProcess]
    ) -> dict[str, Any] | None:
        allocated = allocation(self.client, (rule.get("meta") or {}).get("activity.id"), self.visitor)
        context = {**self.mbox_context(details), "allocation": allocated}
        prepared = self.artifact.prepare(rule)
        satisfied = truthy(prepared.condition(context))
        if self.tracer is not None:
            self.tracer.rule_evaluated(rule, context, satisfied)
        if not satisfied:
            return None
        consequence = prepared.consequence()  # a copy: the rule stays as it is
        if "index" in details:
            consequence["index"] = details["index"]
        for step in steps:
            consequence = step(rule, consequence, kind, details)
        return consequence

    def mbox_context(self, details: dict[str, Any]) -> dict[str, Any]:
        """The request's context with what an mbox (or view) adds: its parameters and its own address,
        which stands for both the page and the referring one, as Adobe's engine has it (once per mbox)."""
        if details is self._details_of:
            return self._details_context
        context = dict(self.context)
        if details.get("address") is not None:
            page = page_context(details["address"])
            context["page"] = page
            context["referring"] = page
        context["mbox"] = mbox_context(details)
        self._details_of, self._details_context = details, context
        return context

    # --- what an executed decision counts ----------------------------------------------------------------

    def notify(self, rule: Rule, shown: dict[str, Any], kind: str, details: dict[str, Any]) -> dict[str, Any]:
        tokens = []
        for option in shown.get("options") or ():
            token = option.get("eventToken")
            key = f"{shown.get('name')}-{token}"
            if token is not None and key not in self._counted:
                tokens.append(token)
                self._counted.add(key)
        if tokens:
            notification = {
                "id": new_id(),
                "impressionId": new_id(),
                "timestamp": self.now_ms,
                "type": "display",
                "mbox": {"name": shown.get("name")},
                "tokens": tokens,
            }
            if self.tracer is not None:
                self.tracer.notified(rule, notification)
            self.notifications.append(notification)
        return shown

    def add_trace(self, rule: Rule, shown: dict[str, Any], kind: str, details: dict[str, Any]) -> dict[str, Any]:
        return {**shown, "trace": self.tracer.result()} if self.tracer is not None else shown


def truthy(value: Any) -> bool:
    """JavaScript's truth, as json-logic-js reads a condition's result."""
    if isinstance(value, list | dict):
        return True
    return bool(value)


def prepare_execute(rule: Rule, shown: dict[str, Any], kind: str, details: dict[str, Any]) -> dict[str, Any]:
    options = [
        {key: value for key, value in option.items() if key != "eventToken"}
        for option in shown.get("options") or ()
        if option.get("type") is not None or option.get("content") is not None
    ]
    result = {**shown, "options": options}
    clicks = [metric for metric in shown.get("metrics") or () if metric.get("type") == "click"]
    if clicks:
        result["metrics"] = clicks
    else:
        result.pop("metrics", None)
    return result


def prepare_prefetch(rule: Rule, shown: dict[str, Any], kind: str, details: dict[str, Any]) -> dict[str, Any]:
    metrics = shown.get("metrics") or []
    options = []
    for position, option in enumerate(shown.get("options") or ()):
        token = option.get("eventToken")
        if token is None and len(metrics) > position and metrics[position].get("type") == "display":
            token = metrics[position].get("eventToken")
        options.append({**option, "eventToken": token})
    result = {**shown, "options": options}
    if kind != "view":
        result.pop("metrics", None)
    return result


def response_tokens(context: dict[str, Any], listed: tuple[str, ...]) -> PostProcess:
    fixed: dict[str, Any] = {"activity.decisioningMethod": "on-device"}
    geo = context["geo"]
    for token, key in GEO_TOKENS:
        if token in listed and geo.get(key) is not None:
            fixed[token] = geo[key]
    from_meta = [token for token in META_TOKENS if token in listed]

    def add(rule: Rule, shown: dict[str, Any], kind: str, details: dict[str, Any]) -> dict[str, Any]:
        meta = rule.get("meta") or {}
        tokens = {token: meta[token] for token in from_meta if meta.get(token) is not None}
        tokens.update(fixed)
        return {
            **shown,
            "options": [{**option, "responseTokens": dict(tokens)} for option in shown.get("options") or ()],
        }

    return add


def replace_macros(rule: Rule, shown: dict[str, Any], kind: str, details: dict[str, Any]) -> dict[str, Any]:
    sources = [rule.get("meta") or {}, details, details.get("parameters") or {}]

    def value_of(found: re.Match[str]) -> str:
        parts = MACRO_RENAMES.sub(lambda name: RENAMED[name.group(0).lower()], found.group(1)).split(".")
        if len(parts) > 2:
            parts = parts[-2:]
        key = ".".join(part for part in parts if part != "mbox")
        for source in sources:
            if isinstance(source, dict) and source.get(key) is not None:
                return str(js_text(source[key]))
        return found.group(0)

    def filled(content: Any) -> Any:
        return MACRO.sub(value_of, content) if isinstance(content, str) else content

    options = []
    for option in shown.get("options") or ():
        if option.get("type") == "html":
            option = {**option, "content": filled(option.get("content"))}
        elif option.get("type") == "actions" and isinstance(option.get("content"), list):
            option = {
                **option,
                "content": [{**action, "content": filled(action.get("content"))} for action in option["content"]],
            }
        options.append(option)
    return {**shown, "options": options}


def js_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def without_page_attributes(rule: Rule, shown: dict[str, Any], kind: str, details: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in shown.items() if key not in ("index", "name", "trace")}
