"""Mart previews on a real Dagster materialization of the marts: Markdown first rows and numeric summaries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.marts import MART_ASSETS
from assets.marts_launch import range_tags
from pipelines.marts.build import MART_TABLES
from pipelines.normalize.currencies import minor_unit_exponent
from pipelines.report.previews import PREVIEW_ROWS, PreviewError, mart_preview
from pipelines.resources import WarehouseResource
from tests.report.conftest import ACCOUNTS, BALANCES


def expected_cash_available() -> dict[str, float]:
    """From the known history, by hand: newest row per active cash account, available or else current."""
    active = {a[0] for a in ACCOUNTS if a[7] == "active"}
    newest: dict[tuple[str, str], tuple] = {}
    for account, kind, ccy, as_of, cur, avail, _ in BALANCES:
        if account in active and kind == "cash" and ((account, ccy) not in newest or as_of > newest[account, ccy][0]):
            newest[account, ccy] = (as_of, avail if avail is not None else cur)
    totals: dict[str, int] = {}
    for (_, ccy), (_, amount) in newest.items():
        totals[ccy] = totals.get(ccy, 0) + amount
    return {f"cash_available_{c}": float(Decimal(t).scaleb(-minor_unit_exponent(c))) for c, t in totals.items()}


def test_each_mart_materialization_carries_a_preview_and_summaries(warehouse: Path) -> None:
    # The daily marts as one run over the history's days (what `fc-balances marts --full` launches).
    first_day = min(row[3] for row in BALANCES).date()
    result = dg.materialize(
        MART_ASSETS,
        resources={"warehouse": WarehouseResource(directory=str(warehouse), history_start=first_day.isoformat())},
        tags=range_tags(first_day, datetime.now(UTC).date()),
        raise_on_error=False,
    )
    assert result.success
    done = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert set(done) == set(MART_TABLES)
    negative_cash = {account for account, kind, _, _, cur, _, _ in BALANCES if kind == "cash" and cur < 0}
    assert negative_cash == {"fca_check", "fca_bhd"}
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        for table, metadata in done.items():
            preview = metadata["preview"]
            assert isinstance(preview, dg.MarkdownMetadataValue)
            lines = preview.value.splitlines()
            (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()  # a range run has no one row count
            assert lines[0].startswith(f"**{table}**: first {min(rows, PREVIEW_ROWS)} of {rows:,} rows")
            body = [line for line in lines[2:] if line.startswith("|")]
            assert len(body) == 2 + min(rows, PREVIEW_ROWS)  # header, rule, rows
            (first_key,) = con.execute(f"SELECT {'customer_id' if table == 'fc_customer_liquidity' else 'account_id'}"
                                       f" FROM {table} LIMIT 1").fetchone()
            assert body[2].startswith(f"| {first_key} |")
            assert "built_at" not in body[0]
            for name, value in metadata.items():
                if name.startswith(("cash_available_", "accounts_with_")):
                    assert isinstance(value, dg.FloatMetadataValue)
        assert con.execute("SELECT count(*) FROM fc_daily_balances WHERE current_minor < 0").fetchone()[0] > 0

    assert done["fc_daily_balances"]["accounts_with_negative_days"].value == len(negative_cash)
    # fca_bhd is negative on its newest day, fca_check is not any more.
    assert done["fc_latest_balances"]["accounts_with_negative_days"].value == 1
    for table in ("fc_latest_balances", "fc_customer_liquidity"):
        numbers = {k: v.value for k, v in done[table].items() if k.startswith("cash_available_")}
        assert numbers == pytest.approx(expected_cash_available()), table
    # jpy keeps no decimals, usd two: a preview cell shows the currency's exponent.
    cells = [line.split(" | ") for line in done["fc_latest_balances"]["preview"].value.splitlines()]
    current = {(c[0].lstrip("| "), c[2]): c[5] for c in cells if len(c) > 5}
    assert current["fca_jpy", "jpy"] == "1,234,567" and current["fca_bhd", "bhd"] == "-7.005"
    assert current["fca_bhd", "usd"] == "0.99"


def test_a_missing_table_is_refused(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con, \
            pytest.raises(PreviewError, match="no table"):
        mart_preview(con, "fc_nothing; DROP TABLE fc_balances")
