"""Call budgets of N calls a minute (``proxy.management.ratelimit.CallBudget``), in this process on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from proxy.failures import BudgetExhausted
from proxy.management.ratelimit import HELD_S, CallBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spend(budget: CallBudget, calls: int = 1) -> None:
    asyncio.run(budget.spend(calls))


def test_within_the_budget_calls_go_at_once() -> None:
    budget = CallBudget(per_minute=5, max_wait_s=0.0, clock=Clock())
    for _ in range(5):
        spend(budget)
    assert (budget.rejected, budget.waited) == (0, 0)


def test_past_the_budget_a_call_gets_429_with_when_to_retry() -> None:
    clock = Clock()
    budget = CallBudget(per_minute=2, max_wait_s=0.0, clock=clock)
    spend(budget)
    clock.now += 10
    spend(budget)
    with pytest.raises(BudgetExhausted) as refused:
        spend(budget)
    assert budget.rejected == 1
    # The first slot frees HELD_S after it was taken: 10 s of that have passed.
    assert refused.value.retry_after_s == int(HELD_S - 10)


def test_a_slot_frees_once_its_window_has_passed() -> None:
    clock = Clock()
    budget = CallBudget(per_minute=1, max_wait_s=0.0, clock=clock)
    spend(budget)
    clock.now += HELD_S
    spend(budget)
    assert budget.rejected == 0


def test_a_batch_over_a_minutes_budget_is_paid_over_the_next_minutes() -> None:
    clock = Clock()
    budget = CallBudget(per_minute=50, max_wait_s=0.0, clock=clock)
    spend(budget, 120)  # not refused: its calls take this window and the next two
    with pytest.raises(BudgetExhausted) as refused:
        spend(budget)
    # What comes next waits until the batch is paid: two more windows.
    assert refused.value.retry_after_s == int(2 * HELD_S)
