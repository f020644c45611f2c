"""Target's rules artifact (``rules.json``): what an on-device decision is made from.

The artifact names the mboxes and views it can decide (``localMboxes``, ``localViews``), those only the
edge can (``remoteMboxes``, ``remoteViews``), and for each mbox and view its rules: a JsonLogic condition
over the visitor's context, and the consequence shown when it holds. Only major version 1 is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUPPORTED_MAJOR_VERSION = 1
DEFAULT_GLOBAL_MBOX = "target-global-mbox"


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
        return cls(
            version=version,
            mbox_rules=dict(rules.get("mboxes") or {}),
            view_rules=dict(rules.get("views") or {}),
            response_tokens=tuple(document.get("responseTokens") or ()),
            global_mbox=document.get("globalMbox") or DEFAULT_GLOBAL_MBOX,
            geo_targeting=bool(document.get("geoTargetingEnabled")),
            local_mboxes=frozenset(document.get("localMboxes") or ()),
            remote_mboxes=tuple(document.get("remoteMboxes") or ()),
            local_views=frozenset(document.get("localViews") or ()),
            remote_views=tuple(document.get("remoteViews") or ()),
            meta=dict(document.get("meta") or {}),
            document=document,
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
