"""Visitor profiles spread over edge clusters.

Every profile has a home cluster (the one that minted its tntId, visible in the ``.NN_M`` suffix).
Identity is global, but an attribute written through cluster A is seen by cluster B only after the
replication delay; until then B sees the newest value that has reached it. That is what makes a lost
edge affinity visible to a client.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from proxy.emulator.catalog import now_iso

MAX_ATTRIBUTE_NAMES = 10_000


@dataclass(slots=True)
class Attribute:
    """One written value of a profile attribute."""

    value: str
    cluster: int
    written_at: float
    modified_at: str


@dataclass(slots=True)
class Profile:
    tnt_id: str
    home: int
    node: int = 0
    third_party_id: str | None = None
    marketing_cloud_visitor_id: str | None = None
    # Each attribute's values, oldest first: the newest one every cluster sees, then any still replicating.
    attributes: dict[str, list[Attribute]] = field(default_factory=dict)
    modified_at: str = field(default_factory=now_iso)

    @property
    def located_tnt_id(self) -> str:
        return f"{self.tnt_id}.{self.home}_{self.node}"

    @property
    def edge_host(self) -> str:
        return edge_host(self.home)


def edge_host(cluster: int) -> str:
    return f"mboxedge{cluster}.tt.omtrdc.net"


def split_tnt_id(tnt_id: str) -> tuple[str, int | None]:
    """``"123-456.28_0"`` -> ``("123-456", 28)``; ids without a location suffix give None."""
    base, _, suffix = tnt_id.partition(".")
    cluster, _, _node = suffix.partition("_")
    return base, int(cluster) if cluster.isdigit() else None


class ProfileStore:
    def __init__(
        self,
        replication_delay_s: float,
        max_profiles: int = 2_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replication_delay_s = replication_delay_s
        self.max_profiles = max_profiles
        self._clock = clock
        self._by_tnt: dict[str, Profile] = {}
        self._by_third_party: dict[str, Profile] = {}
        self._by_mcvid: dict[str, Profile] = {}
        # Every attribute name written, for the Admin API's profile attribute list
        self.attribute_names: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_tnt)

    def clear(self) -> None:
        self._by_tnt.clear()
        self._by_third_party.clear()
        self._by_mcvid.clear()
        self.attribute_names.clear()

    def by_tnt_id(self, tnt_id: str) -> Profile | None:
        return self._by_tnt.get(split_tnt_id(tnt_id)[0])

    def by_third_party_id(self, third_party_id: str) -> Profile | None:
        return self._by_third_party.get(third_party_id)

    def resolve(
        self,
        cluster: int,
        tnt_id: str | None = None,
        third_party_id: str | None = None,
        marketing_cloud_visitor_id: str | None = None,
        create: bool = True,
    ) -> tuple[Profile | None, bool]:
        """Find the visitor's profile by any of its ids, linking the others; mint one if none matches."""
        base, hinted = split_tnt_id(tnt_id) if tnt_id else (None, None)
        profile = (
            (self._by_tnt.get(base) if base else None)
            or (self._by_third_party.get(third_party_id) if third_party_id else None)
            or (self._by_mcvid.get(marketing_cloud_visitor_id) if marketing_cloud_visitor_id else None)
        )
        created = False
        if profile is None:
            if not create:
                return None, False
            profile = Profile(tnt_id=base or self._mint(), home=hinted if hinted is not None else cluster)
            self._add(profile)
            created = True
        if third_party_id and profile.third_party_id != third_party_id:
            profile.third_party_id = third_party_id
            self._by_third_party[third_party_id] = profile
        if marketing_cloud_visitor_id and profile.marketing_cloud_visitor_id != marketing_cloud_visitor_id:
            profile.marketing_cloud_visitor_id = marketing_cloud_visitor_id
            self._by_mcvid[marketing_cloud_visitor_id] = profile
        return profile, created

    def _mint(self) -> str:
        while True:
            candidate = f"{random.randrange(10**14, 10**15)}-{random.randrange(10**5, 10**6)}"
            if candidate not in self._by_tnt:
                return candidate

    def _add(self, profile: Profile) -> None:
        if len(self._by_tnt) >= self.max_profiles:
            oldest = next(iter(self._by_tnt.values()))
            self._remove(oldest)
        self._by_tnt[profile.tnt_id] = profile

    def _remove(self, profile: Profile) -> None:
        self._by_tnt.pop(profile.tnt_id, None)
        if profile.third_party_id:
            self._by_third_party.pop(profile.third_party_id, None)
        if profile.marketing_cloud_visitor_id:
            self._by_mcvid.pop(profile.marketing_cloud_visitor_id, None)

    def write(self, profile: Profile, attributes: dict[str, str], cluster: int) -> None:
        now, stamp = self._clock(), now_iso()
        for name, value in attributes.items():
            if len(self.attribute_names) < MAX_ATTRIBUTE_NAMES:
                self.attribute_names.add(name)
            versions = profile.attributes.setdefault(name, [])
            versions.append(Attribute(str(value), cluster, now, stamp))
            # Values older than the newest one that reached every cluster can never be seen again.
            replicated = [i for i, v in enumerate(versions) if self._replicated(v, now)]
            if replicated:
                del versions[: replicated[-1]]
        profile.modified_at = stamp

    def _replicated(self, attribute: Attribute, now: float) -> bool:
        return now - attribute.written_at >= self.replication_delay_s

    def _visible(self, versions: list[Attribute], cluster: int, now: float) -> Attribute | None:
        """The newest value written through ``cluster`` or already replicated to it."""
        for attribute in reversed(versions):
            if attribute.cluster == cluster or self._replicated(attribute, now):
                return attribute
        return None

    def _seen(self, profile: Profile, cluster: int) -> dict[str, Attribute]:
        now = self._clock()
        seen = {}
        for name, versions in profile.attributes.items():
            attribute = self._visible(versions, cluster, now)
            if attribute is not None:
                seen[name] = attribute
        return seen

    def view(self, profile: Profile, cluster: int) -> dict[str, str]:
        """The attributes as the given cluster sees them now."""
        return {name: attribute.value for name, attribute in self._seen(profile, cluster).items()}

    def document(self, profile: Profile, client: str, cluster: int) -> dict[str, object]:
        """The profile fetch API's answer."""
        return {
            "client": client,
            "visitorId": profile.third_party_id or profile.tnt_id,
            "tntId": profile.located_tnt_id,
            "modifiedAt": profile.modified_at,
            "profileAttributes": {
                name: {"value": attribute.value, "modifiedAt": attribute.modified_at}
                for name, attribute in self._seen(profile, cluster).items()
            },
        }
