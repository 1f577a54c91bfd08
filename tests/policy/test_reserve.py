"""Rate-limit sharing: runs keep a fixed share of every limit free for funds checks, which pace within it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipelines.funds.check import StripeAccess
from pipelines.funds.refresh import check_client
from pipelines.settings import SettingsError
from pipelines.stripe_fc.policy_settings import check_reserve_rps, policy_env
from tests.integration.helpers import run_ingest
from tests.policy.helpers import account, fc_balances_cli, seed_warehouse


def test_run_and_check_limits_add_up_to_stripes() -> None:
    run = _limits_of_run(api_key="sk_live_x", max_rps=None, max_rps_per_endpoint=None, check_reserve_rps=2.0)
    check = check_client(StripeAccess("sk_live_x", "http://127.0.0.1:1", 2.0)).limiter
    assert (run.global_rps + check.global_rps, run.endpoint_rps + check.endpoint_rps) == (100.0, 25.0)
    test_mode = _limits_of_run(api_key="sk_test_x", max_rps=None, max_rps_per_endpoint=None, check_reserve_rps=2.0)
    assert (test_mode.global_rps, test_mode.endpoint_rps) == (23.0, 23.0)
    whole = _limits_of_run(api_key="sk_test_x", max_rps=None, max_rps_per_endpoint=None, check_reserve_rps=0.0)
    assert (whole.global_rps, whole.endpoint_rps) == (25.0, 25.0)


def _limits_of_run(**fields: Any) -> Any:
    from pipelines.resources import StripeResource

    return StripeResource(api_base="http://127.0.0.1:1", **fields).client().limiter


def test_reserve_setting_is_checked() -> None:
    assert check_reserve_rps({}) == 2.0 and check_reserve_rps({"FC_BALANCES_CHECK_RESERVE_RPS": "0"}) == 0.0
    for bad in ("-1", "fast"):
        with pytest.raises(SettingsError, match="FC_BALANCES_CHECK_RESERVE_RPS"):
            check_reserve_rps({"FC_BALANCES_CHECK_RESERVE_RPS": bad})


def test_checks_during_a_saturating_run_meet_no_429(sandbox_factory: Callable[..., Any], tmp_path: Path) -> None:
    """A run refreshing at its whole share while checks on the same warehouse refresh too: no 429, and the checks
    answer while the run holds the warehouse's writer lock. (The sandbox's buckets tolerate a few extra requests, so
    this shows the two coexisting end to end; the arithmetic of the shares is what the first test pins down.)"""
    now = time.time()
    run_accounts = [account(f"fca_run{i:04d}", customer="cus_R") for i in range(180)]
    check_accounts = [account(f"fca_chk{i}", customer="cus_C", as_of=now - 7200) for i in range(3)]
    sandbox = sandbox_factory(mode="live", refresh_latency=(0.3, 0.3))
    sandbox.load_fixtures({"customers": [{"id": "cus_R", "created": 1_764_000_000},
                                         {"id": "cus_C", "created": 1_764_000_001}],
                           "accounts": run_accounts + check_accounts})
    warehouse = tmp_path / "warehouse"
    seed_warehouse(warehouse, check_accounts)
    env = {"STRIPE_API_KEY": sandbox.api_key, "STRIPE_API_BASE": sandbox.base_url,
           "FC_BALANCES_WAREHOUSE": str(warehouse), "FC_BALANCES_CHECK_RESERVE_RPS": "2"}
    answers: list[Any] = []

    def checks() -> None:  # subprocesses, from a thread, while the run goes on in this one
        time.sleep(3.0)  # the run is refreshing at its full share by now
        for doc in check_accounts:
            answers.append(fc_balances_cli(
                ["funds-check", doc["id"], "100", "usd", "--max-age", "1h", "--json"], env))

    thread = threading.Thread(target=checks)
    thread.start()
    try:
        result = run_ingest(sandbox, warehouse, max_rps=100.0, max_rps_per_endpoint=25.0,
                            check_reserve_rps=2.0, max_age_hours=3.0)  # the checks' accounts: theirs
    finally:
        thread.join(timeout=120)
    assert result.success
    assert all(done.returncode == 0 for done in answers), [done.stderr for done in answers]
    answers = [json.loads(done.stdout) for done in answers]
    assert [a["refresh_outcome"] for a in answers] == ["succeeded"] * 3
    stats = sandbox.stats()
    refreshes = sum(n for endpoint, n in stats["requests"].items() if endpoint.endswith("/refresh"))
    assert refreshes == 183
    assert stats["rate_limited"] == 0


@pytest.mark.parametrize(("name", "bad"), [
    ("FC_BALANCES_MAX_AGE_HOURS", "soon"), ("FC_BALANCES_MAX_AGE_HOURS", "0"),
    ("FC_BALANCES_MAX_REFRESHES", "-1"), ("FC_BALANCES_MAX_REFRESHES", "1.5"),
    ("FC_BALANCES_REFRESH_PRICE", "cheap"), ("FC_BALANCES_REFRESH_PRICE", "-0.1"),
    ("FC_BALANCES_REFRESH_PRICE", "NaN"),
])
def test_bad_policy_settings_name_the_variable(name: str, bad: str) -> None:
    with pytest.raises(SettingsError, match=name):
        policy_env({name: bad})


def test_policy_settings_parse() -> None:
    assert policy_env({"FC_BALANCES_MAX_AGE_HOURS": "12", "FC_BALANCES_MAX_REFRESHES": "0",
                       "FC_BALANCES_REFRESH_PRICE": "0.025"}) == {
        "max_age_hours": 12.0, "max_refreshes": 0, "refresh_price": "0.025", "check_reserve_rps": 2.0}
