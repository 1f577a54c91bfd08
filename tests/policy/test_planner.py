"""BudgetPlanner against a brute-force ranking: the exact set, and nothing started early that the end would drop."""

from __future__ import annotations

import random

import pytest

from pipelines.stripe_fc.policy import BudgetPlanner, KnownState


def expected_top(eligible: dict[str, float | None], priorities: dict[str, int], budget: int) -> set[str]:
    """Priority first (higher first), then the stalest (never-seen first), then the id; written apart from the code."""
    with_priority = sorted((a for a in eligible if a in priorities),
                           key=lambda a: (-priorities[a], eligible[a] is not None, eligible[a] or 0.0, a))
    without = sorted((a for a in eligible if a not in priorities),
                     key=lambda a: (eligible[a] is not None, eligible[a] or 0.0, a))
    return set((with_priority + without)[:budget])


@pytest.mark.parametrize("seed", range(40))
def test_choice_is_exact_and_early_starts_are_safe(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"fca_{i:04d}" for i in range(rng.randint(5, 120))]
    known = KnownState()
    listed_as_of: dict[str, float | None] = {}
    for account_id in ids:
        if rng.random() < 0.7:
            known.newest_as_of[account_id] = rng.uniform(0, 1000)
        # A listing may show a newer balance than the warehouse knew, never an older one that counts.
        listed_as_of[account_id] = rng.choice([None, rng.uniform(0, 1200)])
        if rng.random() < 0.3:
            known.priorities[account_id] = rng.randint(-2, 3)
    for extra in range(rng.randint(0, 5)):  # priorities for accounts the run will not list
        known.priorities[f"fca_gone{extra}"] = rng.randint(0, 5)
    eligible_ids = [a for a in ids if rng.random() < 0.8]
    budget = rng.randint(0, len(ids))
    order = ids[:]
    rng.shuffle(order)

    planner = BudgetPlanner(budget, known)
    started: list[str] = []
    newest: dict[str, float | None] = {}
    for account_id in order:
        if account_id in eligible_ids:
            values = [v for v in (known.newest_as_of.get(account_id), listed_as_of[account_id]) if v is not None]
            newest[account_id] = max(values) if values else None
            started += planner.offer(account_id, newest[account_id])
        else:
            started += planner.listed(account_id)
    chosen, over = planner.finish()
    expected = expected_top(newest, known.priorities, budget)
    assert set(started) | set(chosen) == expected
    assert not set(over) & expected and set(over) | expected == set(newest)
    assert len(started) + len(chosen) == min(budget, len(newest))
    assert planner.started_early == len(started)


def test_priority_accounts_start_during_listing_and_others_wait_for_its_end() -> None:
    known = KnownState(newest_as_of={"fca_p1": 10.0, "fca_p2": 5.0}, priorities={"fca_p1": 5, "fca_p2": 1})
    planner = BudgetPlanner(1, known)
    assert planner.offer("fca_x", None) == []  # no priority: never-seen accounts not listed yet may outrank it
    assert planner.offer("fca_p2", 5.0) == []  # fca_p1, not listed yet, may outrank it and the budget is 1
    assert planner.listed("fca_p1") == ["fca_p2"]  # fca_p1 turned out ineligible: fca_p2 is certain now
    assert planner.finish() == ([], ["fca_x"])


def test_budget_zero_refreshes_nothing() -> None:
    planner = BudgetPlanner(0, KnownState(priorities={"fca_p": 9}))
    assert planner.offer("fca_p", None) == [] and planner.offer("fca_q", None) == []
    assert planner.finish() == ([], ["fca_p", "fca_q"])
