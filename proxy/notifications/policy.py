"""How a batch of notifications goes upstream, how the answer settles it, and when a failed one goes
again: one policy for both pipelines (the local log's ``Flusher`` and the Redis stream's ``StreamFlusher``).

- 2xx: the ids in the answer are done; an id missing from it failed and is tried again.
- 400: one bad token or timestamp spoils the whole call upstream: the batch is narrowed down to the bad
  notification (``refusals``).
- 408, 420, 429, 5xx, timeouts, lost connections: tried again after an exponential, jittered delay (at
  least the upstream's Retry-After), up to ``max_attempts``; then the dead-letter file.
- Any other 4xx: the dead-letter file, with the upstream's reason.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from proxy.notifications import telemetry
from proxy.notifications.model import Pending
from proxy.upstream import Upstream, UpstreamResponse, client_host

RETRYABLE_4XX = frozenset({408, 420, 429})
NAMED = re.compile(r"notifications\[(\d+)\]")


class Verdict(enum.Enum):
    ACKNOWLEDGED = "acknowledged"  # some or all ids: the rest are retried
    RETRY = "retry"
    REFUSED = "refused"  # narrowed down to the bad notification
    DEAD = "dead"  # dead-lettered as a whole


@dataclass(frozen=True, slots=True)
class Settlement:
    verdict: Verdict
    reason: str = ""
    acknowledged: frozenset[str] = frozenset()
    retry_after_s: float | None = None
    named: int | None = None  # REFUSED: the index of the notification the edge's answer names, if any


async def send(upstream: Upstream, pending: Sequence[Pending]) -> UpstreamResponse:
    """One Delivery API call carrying ``pending`` (one visitor's, one session's) to the visitor's edge, with
    the telemetry riding on them; raises ``UpstreamUnavailable`` when no answer came."""
    first = pending[0]
    body = telemetry.notification_batch(first.ids_json, [p.payload_json for p in pending])
    path = "/rest/v1/delivery?" + urlencode({"client": first.client, "sessionId": first.session_id})
    return await upstream.request(
        "POST",
        first.edge_host or client_host(first.client),
        path,
        body=orjson.dumps(body),
        headers={"content-type": "application/json"},
    )


def settle(response: UpstreamResponse) -> Settlement:
    """What the edge's answer to a notification call means for the notifications it carried."""
    status = response.status
    if 200 <= status < 300:
        return Settlement(Verdict.ACKNOWLEDGED, acknowledged=acknowledged_ids(response.body))
    if status == 400:
        return Settlement(Verdict.REFUSED, reason(response), named=named_notification(response.body))
    if status in RETRYABLE_4XX or status >= 500:
        return Settlement(Verdict.RETRY, reason(response), retry_after_s=retry_after(response))
    return Settlement(Verdict.DEAD, reason(response))


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 0.5
    cap_s: float = 300.0
    max_attempts: int = 100

    def gives_up(self, attempts: int) -> bool:
        """After ``attempts`` calls that failed, is it time for the dead-letter file?"""
        return attempts >= self.max_attempts

    def delay(self, attempts: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed call: doubling from ``base_s`` up to ``cap_s``,
        jittered down to half, never below the upstream's Retry-After."""
        delay = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1)) * random.uniform(0.5, 1.0)
        return max(delay, retry_after_s or 0.0)


def acknowledged_ids(body: bytes) -> frozenset[str]:
    notes = _answer(body).get("notifications")
    if not isinstance(notes, list):
        return frozenset()
    try:
        return frozenset({note["id"] for note in notes})  # as the edge answers (the ids compared are text)
    except (TypeError, KeyError):
        return frozenset(n["id"] for n in notes if isinstance(n, dict) and isinstance(n.get("id"), str))


def _answer(body: bytes) -> dict[str, Any]:
    """The edge's answer as a JSON object; empty when it is not one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def reason(response: UpstreamResponse) -> str:
    message = _answer(response.body).get("message")
    return message if isinstance(message, str) else f"upstream answered {response.status}"


def named_notification(body: bytes) -> int | None:
    """The index of the notification a refusal names (``notifications[N]`` in its ``field`` or message)."""
    document = _answer(body)
    for source in (document.get("field"), document.get("message")):
        if isinstance(source, str) and (found := NAMED.search(source)):
            return int(found.group(1))
    return None


def retry_after(response: UpstreamResponse) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
