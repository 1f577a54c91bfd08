"""The refresh policy: skip accounts with a fresh enough balance, and spend a refresh budget on the right accounts."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# An account's rank when the budget binds: accounts with a priority first (higher first), then the stalest
# (oldest newest as_of, never-seen first), then the account id, so the choice is a pure function of the data.
RankKey = tuple[int, int, float, str]
NEVER_SEEN = -math.inf


@dataclass(frozen=True)
class PolicySettings:
    max_age_hours: float | None = None  # None: no account is skipped as fresh
    max_refreshes: int | None = None  # None: no budget
    refresh_price: Decimal | None = None  # per refresh request, in the Stripe account's billing currency

    @property
    def active(self) -> bool:
        return self.max_age_hours is not None or self.max_refreshes is not None


@dataclass
class KnownState:
    """What the warehouse and the event store knew before listing: each account's newest balance as_of (unix
    seconds) and the unexpired priorities. Read once, before the first account is listed."""

    newest_as_of: dict[str, float] = field(default_factory=dict)
    priorities: dict[str, int] = field(default_factory=dict)


def balance_as_of(account: Mapping[str, Any]) -> float | None:
    """The as_of of the balance an account object carries, if any."""
    balance = account.get("balance")
    as_of = balance.get("as_of") if isinstance(balance, Mapping) else None
    return float(as_of) if isinstance(as_of, int | float) and not isinstance(as_of, bool) else None


def newest_of(*values: float | None) -> float | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def rank_key(account_id: str, priority: int | None, newest: float | None) -> RankKey:
    """Smaller ranks first."""
    return (0 if priority is not None else 1, -(priority or 0), NEVER_SEEN if newest is None else newest, account_id)


def estimated_cost(price: Decimal | None, refreshes: int) -> Decimal | None:
    return None if price is None else price * refreshes


class BudgetPlanner:
    """Chooses, exactly, the `budget` best-ranked eligible accounts of a run, starting each as early as provable.

    An eligible account may start at once when fewer than `budget` accounts can still rank ahead of it: those
    already started ahead of it, plus every priority account not listed yet, counted at the best rank it could
    reach (its priority and its known as_of, since a listing only ever makes an as_of newer). An account without
    a priority can be outranked by any account not listed yet (a never-seen one ranks first), so it waits for
    the end of the listing; `finish` then chooses the rest over every eligible account.
    """

    def __init__(self, budget: int, known: KnownState) -> None:
        self.budget = budget
        self._priority = known.priorities
        # Priority accounts not listed yet, by the best rank they can reach.
        self._unlisted: dict[str, RankKey] = {
            account_id: rank_key(account_id, priority, known.newest_as_of.get(account_id))
            for account_id, priority in known.priorities.items()
        }
        self._unlisted_keys = sorted(self._unlisted.values())
        self._started_keys: list[RankKey] = []
        self._held: list[RankKey] = []  # eligible, not started yet; kept sorted
        self.started_early = 0

    def _ahead(self, key: RankKey) -> int:
        return bisect.bisect_left(self._started_keys, key) + bisect.bisect_left(self._unlisted_keys, key)

    def listed(self, account_id: str) -> list[str]:
        """A listed account that is not eligible: it no longer counts as a possible rival at its best rank, which
        may let held accounts start; returns those."""
        self._forget(account_id)
        return self._release()

    def _forget(self, account_id: str) -> None:
        key = self._unlisted.pop(account_id, None)
        if key is not None:
            del self._unlisted_keys[bisect.bisect_left(self._unlisted_keys, key)]

    def offer(self, account_id: str, newest: float | None) -> list[str]:
        """An eligible account, listed; the accounts (it or held ones) that may be refreshed now."""
        self._forget(account_id)
        bisect.insort(self._held, rank_key(account_id, self._priority.get(account_id), newest))
        return self._release()

    def _release(self) -> list[str]:
        ready: list[str] = []
        # Held keys are sorted and the count ahead grows with the key: once the best one must wait, all must.
        while self._held and self._held[0][0] == 0 and self._ahead(self._held[0]) < self.budget:
            key = self._held.pop(0)
            bisect.insort(self._started_keys, key)
            ready.append(key[3])
        self.started_early += len(ready)
        return ready

    def finish(self) -> tuple[list[str], list[str]]:
        """After the listing: (to refresh now, over budget). Those started early are within the budget."""
        room = max(0, self.budget - len(self._started_keys))
        chosen, over = self._held[:room], self._held[room:]
        self._held = []
        return [key[3] for key in chosen], [key[3] for key in over]


