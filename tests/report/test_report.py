"""`fc-balances report` on a hand-made warehouse: content, chart points against fc_daily_balances, money, no network."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.marts.build import build_marts
from tests.report.conftest import ACCOUNTS, BUILD_AT, TRICKY_NAME, Chart, one_error_line, parse, run_cli

SEGMENT = re.compile(r"([ML])(-?[\d.]+) (-?[\d.]+)")


def report(warehouse: Path, tmp_path: Path, customer: str = "cus_alpha", *extra: str) -> str:
    out = tmp_path / f"{customer}.html"
    done = run_cli(["report", "--warehouse", str(warehouse), "--customer", customer, "--out", str(out), *extra])
    assert done.returncode == 0, done.stderr
    return out.read_text(encoding="utf-8")


def strokes(chart: Chart, css: str) -> list[list[tuple[date, float]]]:
    """The (day, value) vertices of each stroke of the paths with class `css`, read back through the axis mapping."""
    svg = chart.svg
    x0, dx, top, height = (float(svg[k]) for k in ("data-x0", "data-dx", "data-top", "data-height"))
    lo, hi = float(svg["data-lo"]), float(svg["data-hi"])
    first = date.fromisoformat(svg["data-first-day"])
    result: list[list[tuple[date, float]]] = []
    for cls, d in chart.paths:
        if cls != css:
            continue
        for command, x, y in SEGMENT.findall(d):
            index = (float(x) - x0) / dx
            assert abs(index - round(index)) < 0.01, "a vertex between two days"
            point = (first + timedelta(days=round(index)), hi - (float(y) - top) / height * (hi - lo))
            if command == "M":
                result.append([point])
            else:
                result[-1].append(point)
    return result


def value_of(chart: Chart, circle: dict[str, str]) -> float:
    svg = chart.svg
    lo, hi, top, height = (float(svg[k]) for k in ("data-lo", "data-hi", "data-top", "data-height"))
    return hi - (float(circle["cy"]) - top) / height * (hi - lo)


def daily(warehouse: Path, account: str, currency: str, first: date, last: date) -> dict[date, tuple]:
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT day, observed, \"current\", available, used FROM fc_daily_balances "
            "WHERE account_id = ? AND currency = ? AND day BETWEEN ? AND ? ORDER BY day",
            [account, currency, first, last]).fetchall()
    return {day: (observed, current, available, used) for day, observed, current, available, used in rows}


def check_axes(chart: Chart, first: date, last: date) -> None:
    """The mapping written on the chart is the one its axes show: a wrong mapping would fail here."""
    svg = chart.svg
    x0, dx, top, height = (float(svg[k]) for k in ("data-x0", "data-dx", "data-top", "data-height"))
    lo, hi = float(svg["data-lo"]), float(svg["data-hi"])
    assert svg["data-first-day"] == first.isoformat()
    (axis,) = [line for line in chart.lines if line["class"] == "axis"]
    assert float(axis["x1"]) == pytest.approx(x0, abs=0.01)
    assert float(axis["x2"]) == pytest.approx(x0 + dx * (last - first).days, abs=0.01)
    assert float(axis["y1"]) == pytest.approx(top + height, abs=0.01)
    xlabels = [(a, text) for a, text in chart.labels if a["class"] == "xlabel"]
    ylabels = [(a, text) for a, text in chart.labels if a["class"] == "ylabel"]
    assert len(xlabels) >= 5 and len(ylabels) >= 2
    for attrs, text in xlabels:
        index = (float(attrs["x"]) - x0) / dx
        assert abs(index - round(index)) < 0.01
        assert (first + timedelta(days=round(index))).strftime("%b %d") == text
    for attrs, text in ylabels:
        pixel = (hi - lo) / height * 0.011  # coordinates carry two decimals
        assert hi - (float(attrs["y"]) - top) / height * (hi - lo) == pytest.approx(float(text.replace(",", "")),
                                                                                    abs=pixel)
    values = [float(t.replace(",", "")) for _, t in ylabels]
    assert min(values) == pytest.approx(lo) and max(values) == pytest.approx(hi)


def check_chart(chart: Chart, expected: dict[date, tuple]) -> None:
    lo, hi = float(chart.svg["data-lo"]), float(chart.svg["data-hi"])
    tolerance = (hi - lo) / float(chart.svg["data-height"]) * 0.011  # coordinates carry two decimals
    plotted: dict[date, float] = {}
    for css, observed in (("current", True), ("current carried", False)):
        for stroke in strokes(chart, css):
            # A stroke never bridges a gap, and its style follows the day it reaches.
            assert all((b[0] - a[0]).days == 1 for a, b in itertools.pairwise(stroke))
            assert all(expected[day][0] is observed for day, _ in stroke[1:])
            plotted.update(stroke)
    for circle in chart.circles:
        plotted[date.fromisoformat(circle["data-day"])] = value_of(chart, circle)
        assert (circle["class"] == "obs") is expected[date.fromisoformat(circle["data-day"])][0]
    with_value = {day: float(row[1]) for day, row in expected.items() if row[1] is not None}
    assert set(plotted) == set(with_value)
    for day, value in with_value.items():
        assert plotted[day] == pytest.approx(value, abs=tolerance), day
    observed_days = {day for day, row in expected.items() if row[0] and row[1] is not None}
    assert {date.fromisoformat(c["data-day"]) for c in chart.circles if c["class"] == "obs"} == observed_days

    second = "used" if chart.balance_type == "credit" else "available"
    column = 3 if second == "used" else 2
    second_plotted = {day: value for stroke in strokes(chart, second) for day, value in stroke}
    second_expected = {day: float(row[column]) for day, row in expected.items() if row[column] is not None}
    # An isolated day has no segment to draw; every other value is on the line.
    isolated = {d for d in second_expected if d - timedelta(days=1) not in second_expected
                and d + timedelta(days=1) not in second_expected}
    assert set(second_plotted) == set(second_expected) - isolated
    for day, value in second_plotted.items():
        assert value == pytest.approx(second_expected[day], abs=tolerance)
    negative = sum(1 for row in expected.values() if row[1] is not None and row[1] < 0)
    negative = negative if chart.balance_type == "cash" else 0  # days below zero are shaded for cash only
    assert sum(int(band["data-days"]) for band in chart.bands) == negative


def window_of(html: str) -> tuple[date, date]:
    first, last = re.search(r"(\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d) \(\d+ days, UTC", html).groups()
    return date.fromisoformat(first), date.fromisoformat(last)


def test_every_account_appears_and_every_chart_matches_the_daily_balances(warehouse: Path, tmp_path: Path) -> None:
    html = report(warehouse, tmp_path)
    page = parse(html)
    assert sorted(page.accounts) == sorted(a[0] for a in ACCOUNTS if a[1] == "cus_alpha")
    first, last = window_of(html)
    assert (last - first).days == 89 and last == date(2025, 6, 30)
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        expected_charts = set(con.execute(
            "SELECT DISTINCT account_id, currency FROM fc_daily_balances d JOIN fc_accounts a USING (account_id) "
            "WHERE a.customer_id = 'cus_alpha' AND d.day BETWEEN ? AND ?", [first, last]).fetchall())
    assert {(c.account, c.currency) for c in page.charts} == expected_charts
    for chart in page.charts:
        check_axes(chart, first, last)
        check_chart(chart, daily(warehouse, chart.account, chart.currency, first, last))
    check = next(c for c in page.charts if c.account == "fca_check")
    assert check.bands, "the checking account slides below zero: its days are shaded"
    assert strokes(check, "current carried"), "skipped readings are drawn as carried forward"


def test_days_without_a_row_are_gaps_not_zero(warehouse: Path, tmp_path: Path) -> None:
    # What the bounded carry-forward leaves: no row at all for some days.
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        con.execute("DELETE FROM fc_daily_balances WHERE account_id = 'fca_check' "
                    "AND day BETWEEN DATE '2025-06-01' AND DATE '2025-06-10'")
    html = report(warehouse, tmp_path)
    first, last = window_of(html)
    chart = next(c for c in parse(html).charts if c.account == "fca_check")
    check_chart(chart, daily(warehouse, "fca_check", "usd", first, last))
    days = {day for stroke in strokes(chart, "current") + strokes(chart, "current carried") for day, _ in stroke}
    assert not days & {date(2025, 6, d) for d in range(1, 11)}
    assert date(2025, 5, 31) in days and date(2025, 6, 11) in days


def test_amounts_use_the_currency_exponent(warehouse: Path, tmp_path: Path) -> None:
    text = " ".join(parse(report(warehouse, tmp_path)).text)
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        latest = con.execute("SELECT currency, current_minor, \"current\" FROM fc_latest_balances l "
                             "JOIN fc_accounts a USING (account_id) WHERE a.customer_id = 'cus_alpha'").fetchall()
    decimals = {"jpy": 0, "bhd": 3, "usd": 2}
    for currency, minor, exact in latest:
        shown = f"{Decimal(exact):,.{decimals[currency]}f} {currency.upper()}"
        assert shown in text, shown
        assert Decimal(shown.split()[0].replace(",", "")) * 10 ** decimals[currency] == minor
    assert "1,234,567 JPY" in text and "1,234,567.00" not in text
    assert "-7.005 BHD" in text
    assert re.search(r"Amounts keep Stripe's sign", text)


def test_values_are_escaped_and_nothing_is_fetched(warehouse: Path, tmp_path: Path) -> None:
    html = report(warehouse, tmp_path)
    page = parse(html)
    assert TRICKY_NAME in "".join(page.text)  # shown as text ...
    assert [tag for tag, _ in page.tags if tag in {"script", "link", "img", "iframe", "object", "embed"}] == []
    assert "<script>" not in html  # ... never as markup
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "data"):
            value = attrs.get(name, "")
            assert not re.match(r"\s*(https?:)?//", value, re.I), (tag, name, value)
    assert "@import" not in html
    assert not re.search(r"url\(", html, re.I)
    assert "@" not in "".join(page.text), "no email in the report"


def test_features_come_from_the_current_window_view(warehouse: Path, tmp_path: Path) -> None:
    html = report(warehouse, tmp_path)
    assert "features from fc_current_underwriting_features" in html
    assert ">30 d</td>" in html and ">90 d</td>" in html
    # The view is the one place the report reads features from: narrowing it narrows the report.
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        con.execute("CREATE OR REPLACE VIEW fc_current_underwriting_features AS "
                    "SELECT * FROM fc_underwriting_features WHERE window_days = 30")
    html = report(warehouse, tmp_path)
    assert ">30 d</td>" in html and ">90 d</td>" not in html


def test_access_stopped_at_shows_when_the_column_exists(warehouse: Path, tmp_path: Path) -> None:
    # fc_accounts.access_stopped_at is declared since schema version 4 (data lifecycle), so the column is there.
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        con.execute("UPDATE fc_accounts SET access_stopped_at = TIMESTAMPTZ '2025-06-29 10:15:00+00' "
                    "WHERE account_id = 'fca_bhd'")
    page = report(warehouse, tmp_path)
    assert page.count('data-field="access_stopped_at"') == 4
    assert "2025-06-29 10:15 UTC" in page


def test_a_customer_without_balances_gets_a_report_saying_so(warehouse: Path, tmp_path: Path) -> None:
    page = parse(report(warehouse, tmp_path, "cus_empty"))
    assert page.accounts == ["fca_new"]
    assert page.charts == []
    assert "No balance has been recorded for this customer's accounts yet" in " ".join(page.text)


def test_a_book_of_customers_writes_one_file_each_and_an_index(warehouse: Path, tmp_path: Path) -> None:
    listing = tmp_path / "customers.txt"
    listing.write_text("# the book\ncus_alpha\n\ncus_empty  # new\ncus_alpha\n")
    out = tmp_path / "reports"
    done = run_cli(["report", "--customers", str(listing), "--out-dir", str(out)],
                   env={"FC_BALANCES_WAREHOUSE": str(warehouse)})
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cus_alpha.html", "cus_empty.html", "index.html"]
    links = [a["href"] for tag, a in parse((out / "index.html").read_text()).tags if tag == "a"]
    assert links == ["cus_alpha.html", "cus_empty.html"]
    assert sorted(parse((out / "cus_alpha.html").read_text()).accounts) == ["fca_bhd", "fca_card", "fca_check",
                                                                           "fca_jpy"]


@pytest.mark.parametrize(("customer", "words"), [
    ("cus_nobody", "unknown customer"),
    ("cus_ghost", "no accounts"),
    ("../etc/passwd", "not a customer id"),
])
def test_bad_customers_are_one_line_and_write_nothing(warehouse: Path, tmp_path: Path, customer: str,
                                                      words: str) -> None:
    out = tmp_path / "r.html"
    done = run_cli(["report", "--warehouse", str(warehouse), "--customer", customer, "--out", str(out)])
    assert words in one_error_line(done)
    assert not out.exists()


def test_a_bad_book_writes_nothing(warehouse: Path, tmp_path: Path) -> None:
    listing = tmp_path / "customers.txt"
    listing.write_text("cus_alpha\ncus_nobody\n")
    out = tmp_path / "reports"
    done = run_cli(["report", "--warehouse", str(warehouse), "--customers", str(listing), "--out-dir", str(out)])
    assert "cus_nobody" in one_error_line(done)
    assert not out.exists()
    listing.write_text("cus_alpha\nnot an id!\n")
    assert "line 2" in one_error_line(run_cli(["report", "--warehouse", str(warehouse), "--customers",
                                               str(listing), "--out-dir", str(out)]))
    missing = run_cli(["report", "--warehouse", str(warehouse), "--customers", str(tmp_path / "nope.txt"),
                       "--out-dir", str(out)])
    assert "cannot read the customers file" in one_error_line(missing)


def test_missing_or_empty_warehouses_are_one_line(tmp_path: Path) -> None:
    missing = run_cli(["report", "--customer", "cus_alpha"], env={"FC_BALANCES_WAREHOUSE": str(tmp_path / "no")})
    assert "no warehouse at" in one_error_line(missing)
    (tmp_path / "empty").mkdir()
    duckdb.connect(str(tmp_path / "empty" / "fc_balances.duckdb")).close()
    empty = run_cli(["report", "--warehouse", str(tmp_path / "empty"), "--customer", "cus_alpha"])
    assert "is empty" in one_error_line(empty)
    both = run_cli(["report", "--customer", "cus_alpha", "--customers", "x.txt"], cwd=tmp_path)
    assert "exactly one" in one_error_line(both)
    no_days = run_cli(["report", "--customer", "cus_alpha", "--days", "0"], cwd=tmp_path)
    assert "--days must be between" in one_error_line(no_days)
    assert not list(tmp_path.glob("*.html"))


def test_the_report_never_writes_the_warehouse(warehouse: Path, tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in warehouse.iterdir()}
    report(warehouse, tmp_path)
    assert {p.name: p.read_bytes() for p in warehouse.iterdir()} == before
    # A writer holding the file: the report waits FC_BALANCES_LOCK_TIMEOUT, then says so in one line.
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")):
        done = run_cli(["report", "--warehouse", str(warehouse), "--customer", "cus_alpha"], cwd=tmp_path,
                       env={"FC_BALANCES_LOCK_TIMEOUT": "1"})
        assert "held open by another process; gave up after 1s" in one_error_line(done)


HEALTH_LINE = re.compile(r'<section class="account" id="([^"]+)".*?<dd data-field="health"'
                         r'( data-relink-reason="([^"]*)")? class="health-(\w+)">([^<]*)</dd>', re.S)


def test_each_account_has_a_health_line_from_fc_account_health(warehouse: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        con.execute("UPDATE fc_accounts SET account_numbers_status = 'expired' WHERE account_id = 'fca_card'")
        con.execute("INSERT INTO fc_balance_refreshes (run_id, account_id, outcome, completed_at) VALUES "
                    "('r1', 'fca_jpy', 'failed', TIMESTAMPTZ '2025-06-29 01:00+00')")
        build_marts(con, BUILD_AT)
        con.execute("DELETE FROM fc_account_health WHERE account_id = 'fca_jpy'")  # as if built before it came
        mart = dict(con.execute("SELECT account_id, relink_reason FROM fc_account_health").fetchall())
    html = report(warehouse, tmp_path)
    lines = {m.group(1): (m.group(3), m.group(4), m.group(5)) for m in HEALTH_LINE.finditer(html)}
    assert set(lines) == {a[0] for a in ACCOUNTS if a[1] == "cus_alpha"}
    assert mart["fca_bhd"] == "inactive" and mart["fca_card"] == "numbers_not_transactable"
    for account_id, (reason, css, text) in lines.items():
        if account_id not in mart:
            assert (reason, css, text) == (None, "unknown", "not in fc_account_health yet")
            continue
        assert reason == (mart[account_id] or "")
        assert css == ("relink" if mart[account_id] else "ok")
        assert text.startswith(f"relink: {mart[account_id]} (" if mart[account_id] else "healthy (")
    assert "numbers expired" in lines["fca_card"][2] and "as of 2025-06-30 07:00 UTC" in lines["fca_card"][2]
