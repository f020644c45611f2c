"""What the emulator counted: calls per route, impressions, notifications and their duplicates, IMS
tokens issued, and the mboxes (with their parameter names) that delivery calls asked for."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

MAX_SEEN_MBOXES = 10_000


class BoundedSet:
    """Remembers the most recent ``capacity`` keys; the oldest are forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: dict[Any, None] = {}

    def add(self, key: Any) -> bool:
        """Add a key; False when it was already present."""
        if key in self._keys:
            return False
        if len(self._keys) >= self.capacity:
            del self._keys[next(iter(self._keys))]
        self._keys[key] = None
        return True

    def clear(self) -> None:
        self._keys.clear()


class Stats:
    def __init__(self, dedupe_capacity: int = 5_000_000) -> None:
        self._seen_notifications = BoundedSet(dedupe_capacity)
        self._seen_impressions = BoundedSet(dedupe_capacity)
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.impressions = 0
        self.decisions = 0  # calls that asked for content (a notification alone decides nothing)
        self.display = 0
        self.click = 0
        self.duplicates = 0
        self.by_activity: dict[int, Counter[str]] = defaultdict(Counter)
        self.by_experience: dict[tuple[int, int], int] = defaultdict(int)
        self.experience_events: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
        self.tokens_issued = 0
        self.telemetry_entries = 0
        # mbox name -> (last requested, epoch seconds; parameter names seen), for the Admin API's mbox lists
        self.mboxes: dict[str, tuple[float, set[str]]] = {}
        self._seen_notifications.clear()
        self._seen_impressions.clear()

    def first_notification(self, notification_id: str | None) -> bool:
        """True the first time an id is seen; a repeat counts as a duplicate."""
        if notification_id is None or self._seen_notifications.add(notification_id):
            return True
        self.duplicates += 1
        return False

    def impression(self, activity_id: int, experience_id: int, visitor: str, impression_id: str | None) -> bool:
        """Count one impression unless this page view (impressionId) already counted for the activity."""
        if impression_id and not self._seen_impressions.add((visitor, impression_id, activity_id)):
            self.duplicates += 1
            return False
        self.impressions += 1
        self.by_activity[activity_id]["impressions"] += 1
        self.by_experience[(activity_id, experience_id)] += 1
        return True

    def activity_event(self, activity_id: int, event: str, experience_id: int | None = None) -> None:
        self.by_activity[activity_id][event] += 1
        if experience_id is not None:
            self.experience_events[(activity_id, experience_id)][event] += 1

    def mbox_requested(self, name: str, parameters: dict[str, Any] | None = None) -> None:
        seen = self.mboxes.get(name)
        if seen is None:
            if len(self.mboxes) >= MAX_SEEN_MBOXES:
                return
            seen = self.mboxes[name] = (0.0, set())
        names = seen[1]
        if parameters:
            names.update(parameters)
        self.mboxes[name] = (time.time(), names)

    def document(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "impressions": self.impressions,
            "decisions": self.decisions,
            "notifications": {"display": self.display, "click": self.click, "duplicates": self.duplicates},
            "tokens_issued": self.tokens_issued,
            "telemetry": {"entries": self.telemetry_entries},
            "activities": {
                str(activity): {
                    **counts,
                    "experiences": {str(exp): n for (act, exp), n in self.by_experience.items() if act == activity},
                }
                for activity, counts in self.by_activity.items()
            },
        }
