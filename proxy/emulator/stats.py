"""What the emulator counted: calls per route, impressions, notifications and their duplicates."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


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
        self.display = 0
        self.click = 0
        self.duplicates = 0
        self.by_activity: dict[int, Counter[str]] = defaultdict(Counter)
        self.by_experience: dict[tuple[int, int], int] = defaultdict(int)
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

    def activity_event(self, activity_id: int, event: str) -> None:
        self.by_activity[activity_id][event] += 1

    def document(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "impressions": self.impressions,
            "notifications": {"display": self.display, "click": self.click, "duplicates": self.duplicates},
            "activities": {
                str(activity): {
                    **counts,
                    "experiences": {str(exp): n for (act, exp), n in self.by_experience.items() if act == activity},
                }
                for activity, counts in self.by_activity.items()
            },
        }
