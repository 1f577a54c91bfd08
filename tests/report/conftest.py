"""A hand-made warehouse for the report tests (real DDL, known history, real mart build) and an HTML parser."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from pipelines.contract.migrations import migrate
from pipelines.marts.build import build_marts
from pipelines.normalize.currencies import minor_unit_exponent

BUILD_AT = datetime(2025, 6, 30, 7, 0, tzinfo=UTC)
LAST_DAY = date(2025, 6, 30)
FETCHED_AT = datetime(2025, 6, 30, 6, 0, tzinfo=UTC)
TRICKY_NAME = '<script>alert("x")</script> & Co'
FC_BALANCES = str(Path(sys.executable).with_name("fc-balances"))

# (account_id, customer_id, institution, display_name, last4, category, subcategory, status)
ACCOUNTS = [
    ("fca_check", "cus_alpha", "First Bank", "Everyday Checking", "4321", "cash", "checking", "active"),
    ("fca_card", "cus_alpha", "First Bank", "Rewards Card", "9876", "credit", "credit_card", "active"),
    ("fca_jpy", "cus_alpha", "MUFG Bank", TRICKY_NAME, "1111", "cash", "savings", "active"),
    ("fca_bhd", "cus_alpha", "Gulf Bank", "Dinar Account", None, "cash", "checking", "inactive"),
    ("fca_new", "cus_empty", "New Bank", "Fresh Checking", "0001", "cash", "checking", "active"),
]


def _check_history() -> list[tuple]:
    """A paycheck every 14 days, spending in between, a slide below zero; a reading skipped every 5th day."""
    rows = []
    for back in range(120, -1, -1):
        if back % 5 == 3:
            continue  # carried forward
        day = LAST_DAY - timedelta(days=back)
        amount = 180_000 - (back % 14) * 16_000 - max(0, 40 - back) * 1_500
        rows.append(("fca_check", "cash", "usd", datetime(day.year, day.month, day.day, 9, 30, tzinfo=UTC),
                     amount, amount - 2_500, None))
    return rows


def _card_history() -> list[tuple]:
    rows = []
    for back in range(60, -1, -2):
        day = LAST_DAY - timedelta(days=back)
        used = -(50_000 + 1_000 * (60 - back) + int(20_000 * math.sin(back / 4)))
        rows.append(("fca_card", "credit", "usd", datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
                     used, None, used))
    return rows


BALANCES = [
    *_check_history(),
    *_card_history(),
    # jpy: two readings, the first 20 days before the window's end; a zero-decimal currency
    ("fca_jpy", "cash", "jpy", datetime(2025, 6, 10, 3, tzinfo=UTC), 150_000, 149_000, None),
    ("fca_jpy", "cash", "jpy", datetime(2025, 6, 25, 3, tzinfo=UTC), 1_234_567, None, None),
    # bhd: three decimals, and a second currency on the same account
    ("fca_bhd", "cash", "bhd", datetime(2025, 6, 20, 8, tzinfo=UTC), 1_250, 1_200, None),
    ("fca_bhd", "cash", "bhd", datetime(2025, 6, 29, 8, tzinfo=UTC), -7_005, -7_005, None),
    ("fca_bhd", "cash", "usd", datetime(2025, 6, 29, 8, tzinfo=UTC), 99, 99, None),
    # balances of a customer whose account rows are gone
    ("fca_ghost", "cash", "usd", datetime(2025, 6, 29, 8, tzinfo=UTC), 5, 5, None),
]
CUSTOMER_OF = {row[0]: row[1] for row in ACCOUNTS} | {"fca_ghost": "cus_ghost"}


def _major(amount: int | None, currency: str) -> Decimal | None:
    return None if amount is None else Decimal(amount).scaleb(-minor_unit_exponent(currency))


def make_warehouse(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(folder / "fc_balances.duckdb"))
    migrate(con, str(folder))
    con.executemany(
        "INSERT INTO fc_accounts (account_id, customer_id, account_holder_type, institution_name, display_name, "
        "last4, category, subcategory, status, permissions, livemode, observed_at) "
        "VALUES (?, ?, 'customer', ?, ?, ?, ?, ?, ?, ['balances'], false, ?)",
        [(*row, FETCHED_AT) for row in ACCOUNTS],
    )
    con.executemany(
        "INSERT INTO fc_balances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(account, CUSTOMER_OF[account], kind, ccy, as_of, cur, avail, used, _major(cur, ccy), _major(avail, ccy),
          _major(used, ccy), FETCHED_AT) for account, kind, ccy, as_of, cur, avail, used in BALANCES],
    )
    refreshes = []
    for back in range(8):
        at = BUILD_AT - timedelta(days=back)
        outcome = "failed" if back == 2 else "succeeded"
        refreshes += [(f"run_{back}", "fca_check", outcome, at, at + timedelta(seconds=3), outcome, None,
                       "bank_down" if outcome == "failed" else None),
                      (f"run_{back}", "fca_bhd", "skipped_inactive", None, None, None, None, None)]
    con.executemany("INSERT INTO fc_balance_refreshes VALUES (?, ?, ?, ?, ?, ?, ?, ?)", refreshes)
    build_marts(con, BUILD_AT)
    con.close()
    return folder


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return make_warehouse(tmp_path / "wh")


def run_cli(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_"))}
    return subprocess.run([FC_BALANCES, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**base, **(env or {})})


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    return lines[0]


@dataclass
class Chart:
    account: str
    currency: str
    balance_type: str
    svg: dict[str, str]
    paths: list[tuple[str, str]] = field(default_factory=list)  # (class, d)
    circles: list[dict[str, str]] = field(default_factory=list)
    bands: list[dict[str, str]] = field(default_factory=list)
    lines: list[dict[str, str]] = field(default_factory=list)
    labels: list[tuple[dict[str, str], str]] = field(default_factory=list)  # (attributes, text) of axis labels


class ReportParser(HTMLParser):
    """Collects what the tests check: account sections, charts with their paths and dots, every tag and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.accounts: list[str] = []
        self.charts: list[Chart] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self._figure: dict[str, str] | None = None
        self._label: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "section" and "data-account" in a:
            self.accounts.append(a["data-account"])
        elif tag == "figure":
            self._figure = a
        elif tag == "svg" and self._figure is not None:
            f = self._figure
            self.charts.append(Chart(f["data-account"], f["data-currency"], f["data-balance-type"], a))
        elif self.charts and tag == "path":
            self.charts[-1].paths.append((a.get("class", ""), a["d"]))
        elif self.charts and tag == "circle":
            self.charts[-1].circles.append(a)
        elif self.charts and tag == "rect" and a.get("class") == "neg":
            self.charts[-1].bands.append(a)
        elif self.charts and tag == "line":
            self.charts[-1].lines.append(a)
        elif self.charts and tag == "text":
            self._label = a

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._label is not None:
            self.charts[-1].labels.append((self._label, data))
            self._label = None


def parse(html: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(html)
    parser.close()
    return parser
