"""Failures of the layers below the edge that are no fault of the request and pass: a visitor's session
with as many calls in flight as it may have, a call budget spent for now, no rules artifact yet to decide
from. They know nothing of HTTP; the edge answers them (``proxy.http.errors.answer_for``: 420, 429 and 503
with Retry-After)."""

from __future__ import annotations


class SessionBusy(Exception):
    """The session already has as many requests in flight upstream as it may."""


class BudgetExhausted(Exception):
    """More calls than the budget allows within its wait: try again in ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class ArtifactMissing(Exception):
    """Deciding on device only, and no rules artifact has been read yet: nothing can be decided."""

    retry_after_s = 5
