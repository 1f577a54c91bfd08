"""Time travel: a table read as it stood at a time or snapshot from Python, and `fc-balances report --as-of`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipelines.warehouse import Warehouse
from pipelines.warehouse.snapshots import list_snapshots, read_table
from tests.iceberg_tables import catalog_of
from tests.report.conftest import make_warehouse, one_error_line, run_cli

PUBLISHED = ("fc_accounts", "fc_balances", "fc_balance_refreshes", "fc_latest_balances", "fc_daily_balances",
             "fc_underwriting_features", "fc_customer_liquidity")


def _published_then_renamed(folder: Path) -> datetime:
    """Publish the hand-made warehouse, then rename an account and publish again; a time between the two."""
    make_warehouse(folder)
    with Warehouse(folder) as warehouse:
        warehouse.publish(PUBLISHED, run_id="run_before")
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    with duckdb.connect(str(folder / "fc_balances.duckdb")) as con:
        con.execute("UPDATE fc_accounts SET display_name = 'Renamed Checking' WHERE account_id = 'fca_check'")
        con.execute("UPDATE fc_latest_balances SET display_name = 'Renamed Checking' WHERE account_id = 'fca_check'")
    with Warehouse(folder) as warehouse:
        warehouse.publish(["fc_accounts", "fc_latest_balances"], run_id="run_after")
    return between


def test_a_table_reads_as_it_stood_at_a_time_or_snapshot(tmp_path: Path) -> None:
    folder = tmp_path / "wh"
    between = _published_then_renamed(folder)
    catalog = catalog_of(folder)

    def name_of_check(rows) -> str:
        return next(r["display_name"] for r in rows.to_pylist() if r["account_id"] == "fca_check")

    assert name_of_check(read_table(catalog, "fc_accounts")) == "Renamed Checking"
    assert name_of_check(read_table(catalog, "fc_accounts", as_of=between)) == "Everyday Checking"
    first, second = list_snapshots(catalog, "fc_accounts")
    assert (first.run_id, second.run_id) == ("run_before", "run_after") and second.current
    assert first.rows == second.rows == 5
    assert name_of_check(read_table(catalog, "fc_accounts", snapshot_id=first.snapshot_id)) == "Everyday Checking"
    assert read_table(catalog, "fc_accounts", as_of=between - timedelta(days=1)).num_rows == 0  # before any


def test_report_as_of_shows_the_snapshot_of_that_time(tmp_path: Path) -> None:
    folder = tmp_path / "wh"
    between = _published_then_renamed(folder)
    now = run_cli(["report", "--customer", "cus_alpha", "--out", str(tmp_path / "now.html"),
                   "--warehouse", str(folder)])
    assert now.returncode == 0, now.stderr
    then = run_cli(["report", "--customer", "cus_alpha", "--out", str(tmp_path / "then.html"),
                    "--warehouse", str(folder), "--as-of", between.isoformat().replace("+00:00", "Z")])
    assert then.returncode == 0, then.stderr
    now_html, then_html = (tmp_path / "now.html").read_text(), (tmp_path / "then.html").read_text()
    assert "Renamed Checking" in now_html and "Everyday Checking" not in now_html
    assert "Everyday Checking" in then_html and "Renamed Checking" not in then_html
    # the rest of the report is the same data: the window ends on the same day in both
    assert "2025-06-30" in then_html and "2025-06-30" in now_html

    bad = run_cli(["report", "--customer", "cus_alpha", "--out", str(tmp_path / "x.html"),
                   "--warehouse", str(folder), "--as-of", "yesterday"])
    assert bad.returncode == 1 and "--as-of must be a time like" in one_error_line(bad)
    early = run_cli(["report", "--customer", "cus_alpha", "--out", str(tmp_path / "x.html"),
                     "--warehouse", str(folder), "--as-of", "2020-01-01T00:00Z"])
    assert early.returncode == 1 and "had no snapshot yet at 2020-01-01T00:00:00+00:00" in one_error_line(early)
    assert not (tmp_path / "x.html").exists()


def test_snapshots_command_lists_id_time_run_and_rows(tmp_path: Path) -> None:
    folder = tmp_path / "wh"
    _published_then_renamed(folder)
    done = run_cli(["snapshots", "fc_accounts", "--warehouse", str(folder)])
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.strip().splitlines()
    assert header.split()[:3] == ["snapshot_id", "committed_at", "(UTC)"]
    snapshots = list_snapshots(catalog_of(folder), "fc_accounts")
    assert [line.split()[0] for line in lines] == [str(s.snapshot_id) for s in snapshots]
    assert [line.split()[2] for line in lines] == ["run_before", "run_after"]
    assert [line.split()[4] for line in lines] == ["5", "5"] and lines[-1].endswith("(current)")
    refused = run_cli(["snapshots", "fc_deletions", "--warehouse", str(folder)])
    assert refused.returncode == 1 and "not a published table" in one_error_line(refused)
