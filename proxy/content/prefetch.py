"""Which mboxes a miss prefetches: the client's configured group, then those its visitors asked for
lately, within the 50-mbox limit of one request."""

from __future__ import annotations

from collections import OrderedDict

MAX_BATCH_MBOXES = 50  # mboxes in one request


class PrefetchPlanner:
    def __init__(self, groups: dict[str, list[str]], learn: bool = True, max_learned: int = MAX_BATCH_MBOXES) -> None:
        self.groups = {client: list(dict.fromkeys(names)) for client, names in groups.items()}
        self.learn = learn
        self.max_learned = max_learned
        self._learned: dict[str, OrderedDict[str, None]] = {}

    def asked(self, client: str, mbox: str) -> None:
        """Remember an mbox a client's visitor asked for (most recent last, oldest forgotten first)."""
        if not self.learn:
            return
        learned = self._learned.get(client)
        if learned is None:
            learned = self._learned[client] = OrderedDict()
        learned[mbox] = None
        learned.move_to_end(mbox)
        if len(learned) > self.max_learned:
            learned.popitem(last=False)

    def plan(self, client: str, asked: list[str]) -> list[str]:
        """The asked mboxes first, then the configured group, then the learned ones; at most 50."""
        names = dict.fromkeys(asked)
        for name in self.groups.get(client, ()):
            names.setdefault(name)
        for name in reversed(self._learned.get(client, {})):
            names.setdefault(name)
        return list(names)[:MAX_BATCH_MBOXES]

    def known(self, client: str) -> list[str]:
        return self.plan(client, [])
