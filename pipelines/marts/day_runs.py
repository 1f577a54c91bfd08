"""Days grouped into runs of consecutive days under a row budget: one query per run, never all history at once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date


def day_runs(rows_by_day: Mapping[date, int], limit: int) -> list[list[date]]:
    """The days in order, in runs of consecutive days holding at most `limit` rows (a day over it: alone); a gap
    between two days starts a new run."""
    runs: list[list[date]] = []
    run_rows = 0  # in the run being grown
    for day in sorted(rows_by_day):
        rows = rows_by_day[day]
        if runs and (day - runs[-1][-1]).days == 1 and run_rows + rows <= limit:
            runs[-1].append(day)
            run_rows += rows
        else:
            runs.append([day])
            run_rows = rows
    return runs
