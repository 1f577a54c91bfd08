"""A report from a history the pipeline itself landed: `fc-balances run --history-days` on the built-in sandbox."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.report.conftest import parse, run_cli
from tests.report.test_report import check_axes, check_chart, daily, window_of


def test_reports_for_a_whole_demo_book_match_the_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    ran = run_cli(["run", "--history-days", "6", "--demo-customers", "8", "--quiet", "--warehouse", str(warehouse)],
                  timeout=300)
    assert ran.returncode == 0, ran.stderr
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        accounts = con.execute("SELECT customer_id, account_id FROM fc_accounts").fetchall()
    customers = sorted({customer for customer, _ in accounts})
    listing = tmp_path / "book.txt"
    listing.write_text("\n".join(customers))
    out = tmp_path / "reports"
    done = run_cli(["report", "--warehouse", str(warehouse), "--customers", str(listing), "--out-dir", str(out),
                    "--days", "10"])
    assert done.returncode == 0, done.stderr
    charts = 0
    for customer in customers:
        html = (out / f"{customer}.html").read_text(encoding="utf-8")
        page = parse(html)
        assert sorted(page.accounts) == sorted(a for c, a in accounts if c == customer)
        first, last = window_of(html)
        for chart in page.charts:
            check_axes(chart, first, last)
            check_chart(chart, daily(warehouse, chart.account, chart.currency, first, last))
            charts += 1
    assert charts > len(customers) // 2
