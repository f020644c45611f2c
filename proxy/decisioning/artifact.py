"""Target's rules artifact (``rules.json``): what an on-device decision is made from.

The artifact names the mboxes and views it can decide (``localMboxes``, ``localViews``), those only the
edge can (``remoteMboxes``, ``remoteViews``), and for each mbox and view its rules: a JsonLogic condition
over the visitor's context, and the consequence shown when it holds. Only major version 1 is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.decisioning.logic import Compiled, compile_logic

SUPPORTED_MAJOR_VERSION = 1
DEFAULT_GLOBAL_MBOX = "target-global-mbox"


@dataclass(frozen=True, slots=True)
class Prepared:
    """What deciding by a rule needs, made once: its condition compiled, its consequence as JSON (each
    decision shows a copy of its own)."""

    condition: Compiled
    consequence_json: bytes

    @classmethod
    def of(cls, rule: dict[str, Any]) -> Prepared:
        return cls(compile_logic(rule.get("condition")), orjson.dumps(rule.get("consequence") or {}))

    def consequence(self) -> dict[str, Any]:
        return dict(orjson.loads(self.consequence_json))


class UnsupportedArtifact(ValueError):
    """An artifact this gateway cannot decide from (another major version, or not an artifact at all)."""


@dataclass(frozen=True, slots=True)
class Artifact:
    version: str
    mbox_rules: dict[str, list[dict[str, Any]]]
    view_rules: dict[str, list[dict[str, Any]]]
    response_tokens: tuple[str, ...] = ()
    global_mbox: str = DEFAULT_GLOBAL_MBOX
    geo_targeting: bool = False
    local_mboxes: frozenset[str] = frozenset()
    remote_mboxes: tuple[str, ...] = ()
    local_views: frozenset[str] = frozenset()
    remote_views: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict, repr=False)
    prepared: dict[int, Prepared] = field(default_factory=dict, repr=False)  # by the rule's id()

    def prepare(self, rule: dict[str, Any]) -> Prepared:
        """The rule's condition, compiled, and its consequence as JSON, made when the artifact was read."""
        prepared = self.prepared.get(id(rule))
        return prepared if prepared is not None else Prepared.of(rule)

    @classmethod
    def parse(cls, document: Any) -> Artifact:
        if not isinstance(document, dict) or not isinstance(document.get("version"), str):
            raise UnsupportedArtifact("not a rules artifact: no version")
        version = document["version"]
        major = version.split(".", 1)[0]
        if not major.isdigit() or int(major) != SUPPORTED_MAJOR_VERSION:
            raise UnsupportedArtifact(
                f"artifact version {version} is not supported (major version {SUPPORTED_MAJOR_VERSION} is)"
            )
        rules = document.get("rules") or {}
        if not isinstance(rules, dict):
            raise UnsupportedArtifact("rules must be an object")
        mbox_rules = dict(rules.get("mboxes") or {})
        view_rules = dict(rules.get("views") or {})
        prepared = {
            id(rule): Prepared.of(rule)
            for listed in (*mbox_rules.values(), *view_rules.values())
            if isinstance(listed, list)
            for rule in listed
            if isinstance(rule, dict)
        }
        return cls(
            version=version,
            mbox_rules=mbox_rules,
            view_rules=view_rules,
            response_tokens=tuple(document.get("responseTokens") or ()),
            global_mbox=document.get("globalMbox") or DEFAULT_GLOBAL_MBOX,
            geo_targeting=bool(document.get("geoTargetingEnabled")),
            local_mboxes=frozenset(document.get("localMboxes") or ()),
            remote_mboxes=tuple(document.get("remoteMboxes") or ()),
            local_views=frozenset(document.get("localViews") or ()),
            remote_views=tuple(document.get("remoteViews") or ()),
            meta=dict(document.get("meta") or {}),
            document=document,
            prepared=prepared,
        )

    def remote_needs(self, request: dict[str, Any]) -> tuple[list[str], list[str]]:
        """The mboxes and views of a Delivery API request that only the edge can decide."""
        requested: list[str] = []
        views: list[str] = []
        asked_views = False
        for mode in ("execute", "prefetch"):
            section = request.get(mode) or {}
            requested += [str(mbox.get("name")) for mbox in section.get("mboxes") or () if mbox.get("name")]
            if isinstance(section.get("pageLoad"), dict):
                requested.append(DEFAULT_GLOBAL_MBOX)
            if section.get("views") is not None:
                asked_views = True
                views += [str(view["name"]) for view in section["views"] if view.get("name")]
        mboxes = unique(
            [name for name in self.remote_mboxes if name in requested]
            + [name for name in requested if name not in self.local_mboxes]
        )
        if asked_views and not views:
            remote_views = unique(list(self.remote_views))
        else:
            remote_views = unique(
                [name for name in self.remote_views if name in views]
                + [name for name in views if name not in self.local_views]
            )
        return mboxes, remote_views


def unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
