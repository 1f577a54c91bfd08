"""Seeded, realistic demo customers and accounts, and the balances their refreshes produce."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from stripe_sandbox.ids import IdFactory
from stripe_sandbox.objects import account_doc, account_holder, customer_doc, stripe_balance

# Minor units per US dollar, roughly: sets plausible magnitudes per currency
# (jpy is zero-decimal, kwd has three decimals).
MINOR_PER_USD: dict[str, float] = {"usd": 100, "eur": 92, "gbp": 79, "cad": 137, "jpy": 150, "kwd": 307}

INSTITUTIONS: dict[str, list[str]] = {
    "usd": ["StripeBank", "Chase", "Bank of America", "Wells Fargo", "Capital One", "Ally Bank",
            "Navy Federal Credit Union", "Chime"],
    "eur": ["Deutsche Bank", "BNP Paribas", "ING"],
    "gbp": ["Barclays", "HSBC UK", "Monzo"],
    "cad": ["RBC Royal Bank", "TD Canada Trust"],
    "jpy": ["MUFG Bank", "Mizuho Bank"],
    "kwd": ["National Bank of Kuwait"],
}
# Institutions that compute balances once a day: two refreshes the same day return the same as_of.
DAILY_INSTITUTIONS = frozenset({"Navy Federal Credit Union", "Mizuho Bank", "ING"})
FAILING_INSTITUTION = "Down Bank (Unavailable)"

# (weight, category, subcategory, display names, typical size in USD)
ACCOUNT_KINDS: list[tuple[float, str, str, tuple[str, ...], float]] = [
    (38, "cash", "checking", ("Everyday Checking", "Total Checking", "Business Checking", "Checking"), 4_000),
    (20, "cash", "savings", ("High Yield Savings", "Savings", "Money Market"), 15_000),
    (25, "credit", "credit_card", ("Platinum Card", "Rewards Visa", "Cash Back Mastercard"), 1_800),
    (7, "credit", "line_of_credit", ("Personal Line of Credit", "Business Line of Credit"), 12_000),
    (4, "credit", "mortgage", ("Home Mortgage", "30-Year Fixed Mortgage"), 280_000),
    (4, "investment", "other", ("Brokerage", "Retirement Account"), 40_000),
    (2, "other", "other", ("Health Savings Account",), 3_000),
]
KIND_WEIGHTS = [kind[0] for kind in ACCOUNT_KINDS]

FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
               "Radia", "Tim", "Katherine", "John", "Hedy", "Linus", "Sophie", "Guido", "Anita", "Bjarne"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
              "Ritchie", "Perlman", "Berners-Lee", "Johnson", "McCarthy", "Lamarr", "Torvalds", "Wilson",
              "van Rossum", "Borg", "Stroustrup"]


@dataclass(slots=True)
class BalanceProfile:
    """What a generated balance of an account looks like."""

    balance_type: str  # "cash" or "credit"
    subcategory: str
    currencies: tuple[str, ...]
    scale_usd: float
    daily: bool = False
    always_fail: bool = False
    only_current: bool = False


def _magnitude(rng: random.Random, scale_usd: float, currency: str) -> int:
    usd = rng.lognormvariate(math.log(scale_usd), 0.8)
    return max(1, round(usd * MINOR_PER_USD.get(currency, 100)))


def fresh_amounts(profile: BalanceProfile, rng: random.Random) -> dict[str, int]:
    amounts: dict[str, int] = {}
    for currency in profile.currencies:
        size = _magnitude(rng, profile.scale_usd, currency)
        if profile.balance_type == "credit":
            # Owed by the holder: negative; now and then a card is overpaid (positive).
            amounts[currency] = size // 20 if rng.random() < 0.04 else -size
        else:
            amounts[currency] = -(size // 30) if rng.random() < 0.02 else size
    return amounts


def drift_amounts(previous: dict[str, int], profile: BalanceProfile, rng: random.Random) -> dict[str, int]:
    amounts: dict[str, int] = {}
    for currency, amount in previous.items():
        unit = MINOR_PER_USD.get(currency, 100)
        if profile.subcategory == "mortgage":
            # Mortgages amortise: the debt shrinks a little each time.
            amounts[currency] = round(amount * (1 - rng.uniform(0.0005, 0.003)))
            continue
        step = rng.gauss(0, 0.05 * abs(amount) + 25 * unit)
        new_amount = round(amount + step)
        if profile.balance_type == "credit" and new_amount > 0 and rng.random() > 0.04:
            new_amount = -abs(new_amount)
        if profile.balance_type != "credit" and new_amount < 0 and rng.random() > 0.02:
            new_amount = abs(new_amount)
        amounts[currency] = new_amount
    return amounts


def balance_from_amounts(profile: BalanceProfile, current: dict[str, int], rng: random.Random,
                         as_of: int | None) -> dict[str, Any]:
    cash = credit = None
    if profile.balance_type == "credit":
        if not profile.only_current:
            credit = {"used": dict(current)}
    elif not profile.only_current:
        available = {}
        for currency, amount in current.items():
            # Pending debits make available a bit lower than current.
            pending = round(abs(amount) * rng.uniform(0, 0.05)) if rng.random() < 0.4 else 0
            available[currency] = amount - pending
        cash = {"available": available}
    return stripe_balance({"as_of": as_of, "cash": cash, "credit": credit, "current": dict(current),
                           "type": profile.balance_type})


def next_balance(previous: Any, profile: BalanceProfile, rng: random.Random) -> dict[str, Any]:
    """The balance a successful refresh yields (as_of filled in at completion)."""
    previous_current = previous.get("current") if isinstance(previous, dict) else None
    if (isinstance(previous_current, dict) and previous_current
            and all(isinstance(v, int) and not isinstance(v, bool) for v in previous_current.values())):
        current = drift_amounts(previous_current, profile, rng)
    else:
        current = fresh_amounts(profile, rng)
    return balance_from_amounts(profile, current, rng, None)


def profile_from_doc(doc: dict[str, Any]) -> BalanceProfile:
    """A generator profile for an account that came from fixtures."""
    category = doc.get("category")
    subcategory = doc.get("subcategory") if isinstance(doc.get("subcategory"), str) else "other"
    balance_type = "credit" if category == "credit" else "cash"
    currencies: tuple[str, ...] = ("usd",)
    balance = doc.get("balance")
    if isinstance(balance, dict) and isinstance(balance.get("current"), dict):
        known = tuple(c for c in balance["current"] if isinstance(c, str) and c in MINOR_PER_USD)
        currencies = known or currencies
    scale = next((kind[4] for kind in ACCOUNT_KINDS if kind[1] == category and kind[2] == subcategory), 4_000.0)
    institution = doc.get("institution_name")
    return BalanceProfile(balance_type, subcategory, currencies, scale,
                          daily=institution in DAILY_INSTITUTIONS, always_fail=institution == FAILING_INSTITUTION)


@dataclass(slots=True)
class DemoAccount:
    doc: dict[str, Any]
    profile: BalanceProfile


def generate_demo(n_customers: int, seed: int, ids: IdFactory, now: float, livemode: bool,
                  cooldown: float) -> tuple[list[dict[str, Any]], list[DemoAccount]]:
    """N customers with 0-4 accounts each, some with a balance from an earlier refresh."""
    rng = random.Random(f"stripe_sandbox.demo:{seed}")
    now_int = int(now)
    customers: list[dict[str, Any]] = []
    accounts: list[DemoAccount] = []
    for index in range(n_customers):
        customer_id = ids.new("cus")
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = now_int - rng.randrange(86_400 * 7, 86_400 * 3 * 365)
        email = f"{first}.{last.replace(' ', '').replace('-', '')}{index}@example.com".lower()
        customers.append(customer_doc(customer_id, created, livemode, {
            "email": email, "name": f"{first} {last}", "description": "Demo customer",
        }))
        account_count = rng.choices((0, 1, 2, 3, 4), weights=(5, 35, 30, 20, 10))[0]
        for _ in range(account_count):
            accounts.append(_demo_account(rng, ids, customer_id, created, now_int, livemode, cooldown))
    return customers, accounts


def _demo_account(rng: random.Random, ids: IdFactory, customer_id: str, customer_created: int, now: int,
                  livemode: bool, cooldown: float) -> DemoAccount:
    _, category, subcategory, names, scale = rng.choices(ACCOUNT_KINDS, weights=KIND_WEIGHTS)[0]
    roll = rng.random()
    if roll < 0.80:
        currencies: tuple[str, ...] = ("usd",)
    elif roll < 0.86:
        currencies = ("eur",)
    elif roll < 0.91:
        currencies = ("gbp",)
    elif roll < 0.95:
        currencies = ("cad",)
    elif roll < 0.98:
        currencies = ("jpy",)
    elif roll < 0.99:
        currencies = ("kwd",)
    else:
        currencies = ("usd", "eur")  # a multi-currency account: two keys in every map
    institution = rng.choice(INSTITUTIONS[currencies[0]])
    if currencies == ("usd",) and rng.random() < 0.015:
        institution = FAILING_INSTITUTION
    balance_type = "credit" if category == "credit" else "cash"
    profile = BalanceProfile(balance_type, subcategory, currencies, scale,
                             daily=institution in DAILY_INSTITUTIONS,
                             always_fail=institution == FAILING_INSTITUTION,
                             only_current=rng.random() < 0.06)
    status_roll = rng.random()
    status = "active" if status_roll < 0.92 else ("inactive" if status_roll < 0.97 else "disconnected")
    if rng.random() < 0.07:
        permissions = rng.choice((["payment_method"], ["ownership", "payment_method"]))
    elif rng.random() < 0.5:
        permissions = ["balances", "payment_method"]
    else:
        permissions = ["balances", "ownership", "payment_method", "transactions"]
    created = rng.randrange(customer_created, max(customer_created + 1, now - 3600))
    balance = None
    balance_refresh = None
    if "balances" in permissions and status != "disconnected" and rng.random() < 0.65:
        # Refreshed before the sandbox started: mostly long enough ago that a refresh is allowed now.
        if status == "active" and rng.random() < 0.08 and cooldown > 120:
            attempted = now - rng.randrange(60, int(cooldown * 0.9))
        else:
            attempted = now - rng.randrange(int(cooldown) + 120, int(cooldown) + 86_400 * 20)
        attempted = max(attempted, created)
        completed = attempted + rng.randrange(1, 30)
        failed = profile.always_fail or rng.random() < 0.05
        if not failed or rng.random() < 0.5:
            as_of = completed - (completed % 86_400 if profile.daily else 0)
            balance = balance_from_amounts(profile, fresh_amounts(profile, rng), rng, as_of)
        balance_refresh = {"last_attempted_at": attempted,
                           "next_refresh_available_at": completed + int(cooldown),
                           "status": "failed" if failed else "succeeded"}
    last4 = f"{rng.randrange(10_000):04d}"
    doc = account_doc(ids.new("fca"), created, livemode, account_holder("customer", customer=customer_id), {
        "balance": balance,
        "balance_refresh": balance_refresh,
        "category": category,
        "display_name": f"{rng.choice(names)} ({last4})" if rng.random() < 0.5 else rng.choice(names),
        "institution_name": institution,
        "last4": last4,
        "permissions": permissions,
        "status": status,
        "subcategory": subcategory,
    })
    return DemoAccount(doc, profile)
