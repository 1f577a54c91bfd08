"""One declared spec per mart: what it reads, how it is built (its SQL), its partitions, previews and checks.

The build (pipelines/marts/build.py), the Dagster assets (assets/marts.py), the checks and the previews iterate over
MARTS; a new mart is one entry here (with its SQL under sql/marts/ and its table in contract/tables.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import duckdb

from pipelines.contract.tables import TABLES
from pipelines.contract.values import FEATURE_WINDOWS
from pipelines.marts import feature_windows
from pipelines.marts.health import build_health_mart

# How a mart is built: "partitioned" rebuilds a range of daily partitions; "refill" empties the table and runs its
# SQL once; "since_watermark" runs its SQL over the balances fetched since its last build, then `then_sql`.
# "custom" calls its builder, which runs its SQL in its own transaction and records the build (account health).
BuildKind = Literal["partitioned", "refill", "since_watermark", "custom"]
# The checks a mart gets beyond its declared unique key and currency codes (assets/checks.py): "as_of" (none in
# the future), "amounts" (they match the balance type), "up_to_date" (after the build no day is out of date; warn).
# "relink" (warn with the count of accounts per relink_reason).
CheckName = Literal["as_of", "amounts", "up_to_date", "relink"]
Builder = Callable[[duckdb.DuckDBPyConnection, datetime], int]
RangeParams = Callable[[date, date, bool, Any], dict[str, object]]  # (first, last, seed, HistorySettings)
# Extra buckets of a range another engine builds first; returns the buckets left to the SQL (features: numpy).
RangeEngine = Callable[[duckdb.DuckDBPyConnection, dict[str, object], int], Iterable[int]]
# "Before everything" for a watermark or seed that does not exist yet (bound as a parameter, unlike -infinity).
FIRST_DAY = datetime.min.replace(tzinfo=UTC)


def utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class MartSpec:
    name: str
    reads: tuple[str, ...]  # contract tables and other marts (a partitioned mart also reads its previous day)
    build: BuildKind
    # The statement that builds it (for a partitioned mart: a range of days, per hash bucket). None for a partitioned
    # mart whose range engine builds the range: the buckets it leaves are built a day at a time by day_sql.
    sql: str | None
    then_sql: str | None = None  # since_watermark: the statement that publishes what `sql` staged
    # Partitioned: days per transaction; days before the range its statement reads (its windows); rows per hash
    # bucket (one statement's memory), the parameters of its SQL, and an engine that takes some buckets first.
    batch_days: int = 1
    lookback_days: int = 0
    bucket_rows: int = 0
    range_params: RangeParams | None = None
    range_engine: RangeEngine | None = None
    # A statement for one day that beats the range one there (features: grouped, no window frames).
    day_sql: str | None = None
    day_bucket_rows: int = 0
    # Bytes its build holds in Python beyond what the process already holds (numpy matrices, Arrow slices): DuckDB's
    # limit gives up both while it builds (pipelines/warehouse/base.py, memory_limit_lowered).
    python_memory: int = 0
    sql_constants: Mapping[str, object] = field(default_factory=dict)  # declared constants every statement binds
    checks: frozenset[CheckName] = frozenset()
    builder: Builder | None = None  # build "custom": builds the whole mart, returns its rows
    negative_preview: str | None = None  # SQL counting accounts with negative days, for the asset page
    cash_preview: str | None = None  # SQL summing cash available per currency, for the asset page

    @property
    def partition_column(self) -> str | None:
        """The DATE column naming each daily partition: the table's declared partition (contract/tables.py)."""
        partition = TABLES[self.name].partition
        return partition.column if partition is not None else None

    @property
    def partitioned(self) -> bool:
        return self.partition_column is not None


def _daily_params(first: date, last: date, seed: bool, settings: Any) -> dict[str, object]:
    carry = settings.carry_forward_days
    seed_start = utc(first - timedelta(days=carry))
    return {"first_start": utc(first), "last_end": utc(last + timedelta(days=1)), "carry_days": carry,
            "seed_start": seed_start, "seed_end": utc(first) if seed else seed_start}


def _feature_params(first: date, last: date, seed: bool, settings: Any) -> dict[str, object]:
    return {"seed_end": utc(first) if seed else FIRST_DAY}


# In build order: a mart comes after the marts it reads.
MARTS: tuple[MartSpec, ...] = (
    MartSpec(
        "fc_latest_balances", reads=("fc_balances", "fc_accounts"), build="since_watermark",
        sql="marts/fc_latest_balances", then_sql="marts/replace_latest_balances",
        checks=frozenset({"as_of", "amounts"}),
        negative_preview="report/preview_negative_latest", cash_preview="report/preview_cash_latest",
    ),
    MartSpec(
        "fc_daily_balances", reads=("fc_balances",), build="partitioned", sql="marts/fc_daily_balances",
        batch_days=31, bucket_rows=2_000_000, range_params=_daily_params,
        checks=frozenset({"as_of", "amounts"}),
        negative_preview="report/preview_negative_daily", cash_preview="report/preview_cash_daily",
    ),
    MartSpec(
        # Each batch also computes its windows over the 89 days before it, so longer batches waste less. Its
        # buckets are smaller: a bucket becomes numpy matrices (marts/feature_windows.py; past float64's exact
        # integers the one-day statement takes over, a day at a time). At 500,000 rows, with the slices
        # computed ahead in a thread, a 100,000-account batch builds as fast as the earlier code did at 1,000,000,
        # and the features phase peaks about 150 MiB lower (as measured). The one-day statement groups a bucket's
        # 90 days (no window frames): at 100,000 accounts, 5,000,000 rows (two buckets) take 2.1-2.2 s against
        # 2.6-2.7 s at 3,000,000 (three) for 30 MiB more; 3,000,000 took 0.6 s less than 1,500,000.
        "fc_underwriting_features", reads=("fc_balances", "fc_daily_balances"), build="partitioned",
        sql=None, batch_days=365,
        lookback_days=max(FEATURE_WINDOWS) - 1, bucket_rows=500_000, range_params=_feature_params,
        range_engine=feature_windows.build_range, day_sql="marts/fc_underwriting_features",
        day_bucket_rows=5_000_000, python_memory=feature_windows.NUMPY_MEMORY, checks=frozenset({"up_to_date"}),
        sql_constants={"short_days": FEATURE_WINDOWS[0], "long_days": FEATURE_WINDOWS[1]},
        negative_preview="report/preview_negative_features", cash_preview="report/preview_cash_features",
    ),
    MartSpec(
        "fc_customer_liquidity", reads=("fc_latest_balances",), build="refill", sql="marts/fc_customer_liquidity",
        cash_preview="report/preview_cash_liquidity",
    ),
    MartSpec(
        "fc_account_health", reads=("fc_accounts", "fc_balance_refreshes", "fc_balances"), build="custom",
        sql="marts/fc_account_health", builder=build_health_mart, checks=frozenset({"relink"}),
    ),
)
MART_SPECS: dict[str, MartSpec] = {spec.name: spec for spec in MARTS}
