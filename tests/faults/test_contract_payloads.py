"""Balances that break Stripe's contract are rejected row by row with their reason; the rest lands, the run succeeds."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines.normalize.normalizer import (
    AMOUNT_NOT_INTEGER,
    AMOUNT_OUT_OF_RANGE,
    BALANCE_NOT_OBJECT,
    CREDIT_WITH_CASH_AVAILABLE,
    INVALID_AMOUNT_MAP,
    INVALID_AS_OF,
    UNKNOWN_BALANCE_TYPE,
    UNKNOWN_CURRENCY,
)
from tests.faults.harness import (
    account,
    cash,
    cli_env,
    customers,
    integrity_problems,
    query,
    run_cli,
    succeeded,
)

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def contract_breaking_fixtures(base: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fixtures, and what each account's balance is: served verbatim by the sandbox, whatever its shape."""
    served: dict[str, Any] = {
        # Amounts of the wrong type, next to a valid currency of the same map.
        "fca_string_amount": cash(base + 1, {"usd": "100", "eur": 5}, {"eur": 4}),
        "fca_float_amount": cash(base + 2, {"usd": 100.5, "gbp": 7}),
        "fca_whole_float": cash(base + 3, {"usd": 250.0, "cad": 1}),
        "fca_bool_amount": cash(base + 4, {"usd": True, "eur": 3}),
        "fca_bool_available": cash(base + 5, {"usd": 10, "eur": 6}, {"usd": False, "eur": 6}),
        # Beyond 64 bits on both sides; the extremes that do fit land exactly.
        "fca_too_big": cash(base + 6, {"usd": 2**63, "eur": INT64_MAX}),
        "fca_too_small": cash(base + 7, {"usd": -(2**63) - 1, "eur": INT64_MIN}),
        # Not ISO 4217 (stripe-mock's "undefined", a made-up code, the right code in upper case).
        "fca_bad_currencies": cash(base + 8, {"undefined": 1, "usdx": 2, "USD": 3, "usd": 4}, {"usd": 4}),
        # Whole-balance faults: one reject row each, with no currency.
        "fca_unknown_type": {"as_of": base + 9, "type": "investment", "current": {"usd": 1}},
        "fca_missing_type": {"as_of": base + 10, "current": {"usd": 1}, "cash": {"available": {"usd": 1}}},
        "fca_string_as_of": cash(str(base + 11), {"usd": 1}, {"usd": 1}),  # type: ignore[arg-type]
        "fca_current_list": {"as_of": base + 12, "type": "cash", "current": [1, 2], "cash": {"available": None}},
        "fca_credit_with_available": {"as_of": base + 13, "type": "credit", "current": {"usd": -5},
                                      "credit": {"used": {"usd": 5}}, "cash": {"available": {"usd": 9}}},
        "fca_balance_string": "not a balance",
        # Served on listing (an inactive account) so the sandbox does not stamp an as_of on it.
        "fca_missing_as_of": {"type": "cash", "current": {"usd": 1}, "cash": {"available": {"usd": 1}}},
        # A healthy account beside them.
        "fca_good": cash(base + 14, {"usd": 12_345}, {"usd": 12_000}),
    }
    custs = customers(3, "bad")
    accounts = []
    for index, (account_id, balance) in enumerate(served.items()):
        owner = custs[index % 3]["id"]
        if account_id == "fca_missing_as_of":
            accounts.append(account(account_id, owner, status="inactive", balance=balance))
        else:
            accounts.append(account(account_id, owner, [succeeded(balance)]))
    return {"customers": custs, "accounts": accounts}, served


# (account_id, currency or None for the whole balance) -> why it cannot land
EXPECTED_REJECTS: dict[tuple[str, str | None], str] = {
    ("fca_string_amount", "usd"): AMOUNT_NOT_INTEGER,
    ("fca_float_amount", "usd"): AMOUNT_NOT_INTEGER,
    ("fca_whole_float", "usd"): AMOUNT_NOT_INTEGER,
    ("fca_bool_amount", "usd"): AMOUNT_NOT_INTEGER,
    ("fca_bool_available", "usd"): AMOUNT_NOT_INTEGER,
    ("fca_too_big", "usd"): AMOUNT_OUT_OF_RANGE,
    ("fca_too_small", "usd"): AMOUNT_OUT_OF_RANGE,
    ("fca_bad_currencies", "undefined"): UNKNOWN_CURRENCY,
    ("fca_bad_currencies", "usdx"): UNKNOWN_CURRENCY,
    ("fca_bad_currencies", "USD"): UNKNOWN_CURRENCY,
    ("fca_unknown_type", None): UNKNOWN_BALANCE_TYPE,
    ("fca_missing_type", None): UNKNOWN_BALANCE_TYPE,
    ("fca_string_as_of", None): INVALID_AS_OF,
    ("fca_current_list", None): INVALID_AMOUNT_MAP,
    ("fca_credit_with_available", None): CREDIT_WITH_CASH_AVAILABLE,
    ("fca_balance_string", None): BALANCE_NOT_OBJECT,
    ("fca_missing_as_of", None): INVALID_AS_OF,
}

# Valid currencies of the same accounts, which must land: (account_id, currency) -> (current_minor, current)
EXPECTED_LANDED: dict[tuple[str, str], tuple[int, Decimal]] = {
    ("fca_string_amount", "eur"): (5, Decimal("0.05")),
    ("fca_float_amount", "gbp"): (7, Decimal("0.07")),
    ("fca_whole_float", "cad"): (1, Decimal("0.01")),
    ("fca_bool_amount", "eur"): (3, Decimal("0.03")),
    ("fca_bool_available", "eur"): (6, Decimal("0.06")),
    ("fca_too_big", "eur"): (INT64_MAX, Decimal(INT64_MAX) / 100),
    ("fca_too_small", "eur"): (INT64_MIN, Decimal(INT64_MIN) / 100),
    ("fca_bad_currencies", "usd"): (4, Decimal("0.04")),
    ("fca_good", "usd"): (12_345, Decimal("123.45")),
}


def test_contract_breaking_balances_are_rejected_row_by_row(sandbox_factory, tmp_path: Path) -> None:
    fixtures, served = contract_breaking_fixtures(int(time.time()) - 3_600)
    sandbox = sandbox_factory(fixtures=fixtures, refresh_latency=(0.2, 0.2))
    warehouse = tmp_path / "wh"
    done = run_cli(cli_env(sandbox.api_key, sandbox.base_url, warehouse))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr

    rejected = query(warehouse, "select account_id, currency, reason, payload, epoch(as_of) from fc_rejected_balances")
    assert {(a, c): reason for a, c, reason, _, _ in rejected} == EXPECTED_REJECTS
    assert len(rejected) == len(EXPECTED_REJECTS)  # one row each, none twice
    for account_id, _, _, payload, as_of in rejected:
        # The payload is the balance exactly as served (2**63 and friends survive the round trip).
        assert json.loads(payload) == served[account_id], account_id
        balance = served[account_id]
        if isinstance(balance, dict) and type(balance.get("as_of")) is int:
            assert as_of == balance["as_of"], account_id
        else:
            assert as_of is None, account_id

    landed = query(warehouse, "select account_id, currency, current_minor, current from fc_balances")
    assert {(a, c): (minor, major) for a, c, minor, major in landed} == EXPECTED_LANDED

    # The run reports the count: a warning line and the table's summary line, both with this run's count.
    count = len(EXPECTED_REJECTS)
    assert f"{count} balance rows broke the contract" in done.stdout
    assert re.search(rf"fc_rejected_balances: {count} rows \({count} written this run\)", done.stdout), done.stdout
    assert integrity_problems(warehouse) == []
