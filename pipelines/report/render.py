"""Renders a customer's balance report (and a book's index) as one self-contained HTML page; every value escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from pipelines.report import fmt
from pipelines.report.chart import render_chart
from pipelines.report.data import AccountData, CustomerData, Window

SIGN_CONVENTION = (
    "Amounts keep Stripe's sign: positive is money owed to the account holder (a cash balance), negative is owed by "
    "the holder (an overdraft, or a credit card's balance). They are in major units with each currency's decimals "
    "(0 for JPY, 3 for BHD, 2 for most)."
)

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2330;margin:0;
background:#f4f5f7}
main{max-width:1080px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:0}h3{font-size:14px;margin:14px 0 6px;color:#39425a}
header.top{background:#fff;border:1px solid #dfe2e8;border-radius:8px;padding:16px 20px;margin-bottom:16px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0 0}
dl.facts dt{color:#5b6478}dl.facts dd{margin:0}
p.note{color:#5b6478;font-size:13px;margin:8px 0 0}
p.empty{background:#fff6e0;border:1px solid #f0d58c;padding:8px 12px;border-radius:6px}
section.account{background:#fff;border:1px solid #dfe2e8;border-radius:8px;padding:14px 20px;margin:0 0 16px}
section.liquidity{background:#fff;border:1px solid #dfe2e8;border-radius:8px;padding:14px 20px;margin:0 0 16px}
.sub{color:#5b6478;font-weight:normal}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
th,td{padding:3px 10px 3px 0;text-align:left;vertical-align:top;white-space:nowrap}
th{color:#5b6478;font-weight:600;border-bottom:1px solid #dfe2e8}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.neg-amount{color:#b42318}
.status-active{color:#067647}.status-inactive,.status-disconnected{color:#b42318}
.health-ok{color:#067647}.health-relink{color:#b42318}
figure{margin:0}svg.chart{width:100%;height:auto;display:block;margin:4px 0 0}
svg.chart .grid{stroke:#eceef2;stroke-width:1}svg.chart .zero{stroke:#8a93a6;stroke-width:1}
svg.chart .axis{stroke:#c3c8d2}
svg.chart text{font-size:11px;fill:#5b6478}
svg.chart .neg{fill:#e5484d;fill-opacity:.12}
svg.chart path{fill:none;stroke-linejoin:round;stroke-linecap:round}
svg.chart .current{stroke:#1f5fbf;stroke-width:2}
svg.chart .current.carried{stroke:#86a8e0;stroke-dasharray:3 2}
svg.chart .available{stroke:#2a9d8f;stroke-width:1.3}svg.chart .used{stroke:#c2410c;stroke-width:1.3}
svg.chart .obs{fill:#1f5fbf}svg.chart .carried-point{fill:#fff;stroke:#1f5fbf}
.legend{font-size:12px;color:#5b6478;margin:2px 0 0}
.legend span{margin-right:14px;white-space:nowrap}
.sw{display:inline-block;width:18px;height:0;border-top:2px solid #1f5fbf;vertical-align:middle;margin-right:5px}
.sw.dash{border-top-style:dashed;border-color:#86a8e0}.sw.available{border-color:#2a9d8f}.sw.used{border-color:#c2410c}
.sw.neg{height:10px;border:0;background:rgba(229,72,77,.18)}
.dot{display:inline-block;width:6px;height:6px;border-radius:3px;background:#1f5fbf;margin-right:5px}
footer{color:#8a93a6;font-size:12px;margin-top:20px}
"""


def e(value: Any) -> str:
    """HTML-escaped text of any value; None shows as a dash."""
    return escape(fmt.NONE if value is None else str(value), quote=True)


def _money_cell(amount: float | int | None, currency: str, code: bool = True) -> str:
    css = "num neg-amount" if amount is not None and amount < 0 else "num"
    return f'<td class="{css}">{e(fmt.money(amount, currency, code))}</td>'


def _table(headers: Sequence[str], rows: Iterable[str], numeric: Sequence[int] = ()) -> str:
    head = "".join(f'<th class="num">{e(h)}</th>' if i in numeric else f"<th>{e(h)}</th>"
                   for i, h in enumerate(headers))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>'
            f"<style>{STYLE}</style></head><body><main>{body}</main></body></html>\n")


def render_customer(customer: CustomerData, window: Window) -> str:
    accounts = customer.accounts
    institutions = sorted({a.account.get("institution_name") or fmt.NONE for a in accounts})
    header = [
        f"<header class=\"top\"><h1>Balance report · {e(customer.customer_id)}</h1><dl class=\"facts\">",
        f"<dt>Customer</dt><dd data-field=\"customer\">{e(customer.customer_id)}</dd>",
        f"<dt>Report time</dt><dd>{e(fmt.timestamp(window.report_time))}</dd>",
        f"<dt>Window</dt><dd>{e(fmt.day(window.first_day))} to {e(fmt.day(window.last_day))} "
        f"({window.days} days, UTC, ending on the newest day of the daily balances)</dd>",
        f"<dt>Accounts</dt><dd data-field=\"accounts\">{len(accounts)}</dd>",
        f"<dt>Institutions</dt><dd>{e(', '.join(institutions))}</dd>",
        f"</dl><p class=\"note\" id=\"sign-convention\">{e(SIGN_CONVENTION)}</p></header>",
    ]
    body = ["".join(header)]
    if not customer.has_balances:
        body.append('<p class="empty" id="no-balances">No balance has been recorded for this customer\'s accounts '
                    "yet: the accounts are listed below, with their refresh outcomes.</p>")
    body.append(_liquidity(customer))
    body.extend(_account(account, window) for account in accounts)
    body.append(f"<footer>Made by fc-balances from the warehouse only (features from "
                f"{e(window.features_source)}); no request was made to Stripe.</footer>")
    return _page(f"Balance report · {customer.customer_id}", "".join(body))


def _liquidity(customer: CustomerData) -> str:
    if not customer.liquidity:
        return ('<section class="liquidity"><h2>Liquidity by currency</h2>'
                '<p class="note">No active account with a balance.</p></section>')
    rows = []
    for row in customer.liquidity:
        ccy = row["currency"]
        rows.append(
            f"<tr><td>{e(ccy.upper())}</td><td class=\"num\">{e(row['accounts'])}</td>"
            f"{_money_cell(row['cash_available_minor'], ccy)}"
            f"<td class=\"num\">{e(row['cash_accounts_current_fallback'])}</td>"
            f"{_money_cell(row['credit_current_minor'], ccy)}"
            f"<td>{e(fmt.timestamp(row['oldest_as_of']))}</td><td>{e(fmt.timestamp(row['newest_as_of']))}</td></tr>")
    table = _table(["Currency", "Active accounts", "Cash available", "Counted with current", "Credit current",
                    "Oldest as of", "Newest as of"], rows, numeric=(1, 2, 3, 4))
    return (f'<section class="liquidity"><h2>Liquidity by currency</h2>{table}<p class="note">Cash available sums '
            "the newest available balance of each active cash account (current where available is missing); "
            "credit current sums the newest current balance of each active credit account.</p></section>")


def _account(data: AccountData, window: Window) -> str:
    a = data.account
    account_id = a["account_id"]
    last4 = f" ····{a['last4']}" if a.get("last4") else ""
    status = a.get("status")
    facts = [
        f"<dt>Account</dt><dd>{e(account_id)}</dd>",
        f"<dt>Category</dt><dd>{e(a.get('category'))} / {e(a.get('subcategory'))}</dd>",
        f"<dt>Status</dt><dd class=\"status-{e(status)}\">{e(status)}</dd>",
    ]
    if window.shows_access_stopped:
        facts.append(f"<dt>Access stopped at</dt><dd data-field=\"access_stopped_at\">"
                     f"{e(fmt.timestamp(a.get('access_stopped_at')))}</dd>")
    if window.shows_health:
        facts.append(_health(data.health))
    parts = [
        f'<section class="account" id="{e(account_id)}" data-account="{e(account_id)}">'
        f"<h2>{e(a.get('institution_name'))} · {e(a.get('display_name'))}{e(last4)} "
        f'<span class="sub">{e(a.get("category"))}</span></h2>'
        f'<dl class="facts">{"".join(facts)}</dl>',
        _latest(data, window),
    ]
    if not data.latest:
        parts.append('<p class="empty">No balance has been recorded for this account yet.</p>')
    for currency, series in sorted(data.series.items()):
        svg = render_chart(series, window)
        second = "used" if series.balance_type == "credit" else "available"
        parts.append(f"<h3>Daily balance, {e(currency.upper())}</h3>")
        if not svg:
            parts.append('<p class="note">No value in this window.</p>')
            continue
        parts.append(f'<figure data-account="{e(account_id)}" data-currency="{e(currency)}" '
                     f'data-balance-type="{e(series.balance_type)}">{svg}</figure>')
        parts.append(
            f'<p class="legend"><span><i class="sw"></i>current (observed day ●)</span>'
            f'<span><i class="sw dash"></i>current, carried forward</span>'
            f'<span><i class="sw {second}"></i>{second}</span>'
            + ('<span><i class="sw neg"></i>below zero</span>' if series.balance_type == "cash" else "")
            + "<span>days without a value are left blank</span></p>")
    if data.latest and not data.series:
        parts.append('<p class="note">No daily balance in this window.</p>')
    parts.append(_features(data))
    parts.append(_refreshes(data))
    parts.append("</section>")
    return "".join(parts)


def _health(health: dict[str, Any] | None) -> str:
    """One line: healthy, or the relink reason first, then what fc_account_health knows of the account."""
    if health is None:
        return '<dt>Health</dt><dd data-field="health" class="health-unknown">not in fc_account_health yet</dd>'
    reason = health["relink_reason"]
    verdict = f"relink: {reason}" if reason else "healthy"
    details = [f"numbers {health['account_numbers_status'] or 'none'}",
               f"{health['consecutive_failed_refreshes']} failed refreshes in a row",
               f"last successful refresh {fmt.timestamp(health['last_successful_refresh_at'])}",
               f"{health['days_with_balance_30d']} of 30 days with a balance"]
    if health["expected_deactivation_at"] is not None:
        details.insert(0, f"expected deactivation {fmt.timestamp(health['expected_deactivation_at'])}")
    return (f'<dt>Health</dt><dd data-field="health" data-relink-reason="{e(reason or "")}" '
            f'class="health-{"relink" if reason else "ok"}">{e(verdict)} ({e(", ".join(details))}; '
            f"as of {e(fmt.timestamp(health['built_at']))})</dd>")


def _latest(data: AccountData, window: Window) -> str:
    if not data.latest:
        return ""
    rows = []
    for row in data.latest:
        ccy = row["currency"]
        rows.append(f"<tr><td>{e(ccy.upper())}</td><td>{e(row['balance_type'])}</td>"
                    f"{_money_cell(row['current_minor'], ccy)}{_money_cell(row['available_minor'], ccy)}"
                    f"{_money_cell(row['used_minor'], ccy)}<td>{e(fmt.timestamp(row['as_of']))}</td>"
                    f"<td class=\"num\">{e(fmt.age(row['as_of'], window.report_time))}</td></tr>")
    return "<h3>Newest balance</h3>" + _table(
        ["Currency", "Type", "Current", "Available", "Used", "As of", "Staleness"], rows, numeric=(2, 3, 4, 6))


FEATURE_MONEY = (("avg_daily_balance_minor", "Average"), ("min_daily_balance_minor", "Min"),
                 ("p10_daily_balance_minor", "P10"), ("p90_daily_balance_minor", "P90"),
                 ("max_daily_balance_minor", "Max"), ("stddev_daily_balance_minor", "Std dev"))


def _features(data: AccountData) -> str:
    if not data.features:
        return ""
    rows = []
    for row in data.features:
        ccy = row["currency"]
        money = "".join(_money_cell(row.get(column), ccy, code=False) for column, _ in FEATURE_MONEY)
        span = f"{fmt.day(row.get('window_start'))} to {fmt.day(row.get('window_end'))}"
        rows.append(f"<tr><td>{e(ccy.upper())}</td><td class=\"num\" title=\"{e(span)}\">{e(row['window_days'])} d</td>"
                    f"<td class=\"num\">{e(fmt.percent(row.get('coverage')))}</td>{money}"
                    f"<td class=\"num\">{e(row.get('days_negative'))}</td>"
                    f"<td class=\"num\">{e(row.get('longest_negative_streak'))}</td></tr>")
    headers = ["Currency", "Window", "Coverage", *(label for _, label in FEATURE_MONEY),
               "Days < 0", "Longest < 0 streak"]
    ends = sorted({fmt.day(row.get("window_end")) for row in data.features})
    return (f"<h3>Underwriting features <span class=\"sub\">(windows ending {e(', '.join(ends))}; amounts in "
            f"the row's currency)</span></h3>" + _table(headers, rows, numeric=tuple(range(1, 11))))


def _refreshes(data: AccountData) -> str:
    if not data.refreshes:
        return '<h3>Refreshes</h3><p class="note">No refresh recorded.</p>'
    summary = ", ".join(f"{o['outcome']} {o['runs']}" for o in data.outcomes)
    rows = [f"<tr><td>{e(r['outcome'])}</td><td>{e(fmt.timestamp(r['requested_at']))}</td>"
            f"<td>{e(fmt.timestamp(r['completed_at']))}</td><td>{e(r['status'])}</td><td>{e(r['error_code'])}</td></tr>"
            for r in data.refreshes]
    return (f"<h3>Last refreshes</h3><p class=\"note\">Runs recorded by outcome: {e(summary)}.</p>"
            + _table(["Outcome", "Requested", "Completed", "Status", "Error code"], rows))


def render_index(customers: Sequence[CustomerData], files: dict[str, str], window: Window) -> str:
    rows = []
    for customer in customers:
        currencies = sorted({row["currency"].upper() for a in customer.accounts for row in a.latest})
        newest = max((row["as_of"] for a in customer.accounts for row in a.latest), default=None)
        rows.append(f"<tr><td><a href=\"{e(files[customer.customer_id])}\">{e(customer.customer_id)}</a></td>"
                    f"<td class=\"num\">{len(customer.accounts)}</td><td>{e(', '.join(currencies) or fmt.NONE)}</td>"
                    f"<td>{e(fmt.timestamp(newest))}</td></tr>")
    body = (f'<header class="top"><h1>Balance reports</h1><dl class="facts">'
            f"<dt>Report time</dt><dd>{e(fmt.timestamp(window.report_time))}</dd>"
            f"<dt>Window</dt><dd>{e(fmt.day(window.first_day))} to {e(fmt.day(window.last_day))} "
            f"({window.days} days)</dd><dt>Customers</dt><dd>{len(customers)}</dd></dl></header>"
            + _table(["Customer", "Accounts", "Currencies", "Newest balance as of"], rows, numeric=(1,)))
    return _page("Balance reports", body)
