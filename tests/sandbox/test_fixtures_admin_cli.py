"""Fixture validation, the admin HTTP API, the command line, and live mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import stripe

from stripe_sandbox import FixtureError, load_fixtures_file
from stripe_sandbox.cli import main
from tests.sandbox.conftest import account, customer, sdk

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("fixtures", "message"), [
    ({"customers": [customer("cus_A")],
      "accounts": [account("fca_1", "cus_A", account_holder={"type": "customer", "customer": "cus_B"})]},
     "conflicts"),
    ({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A", status="frozen")]},
     "unknown status 'frozen'"),
    ({"customers": [customer("cus_A")],
      "accounts": [account("fca_1", "cus_A", balance_refresh={"status": "running"})]},
     "unknown balance_refresh.status"),
    ({"customers": [customer("cus_A")],
      "accounts": [account("fca_1", "cus_A", refresh_outcomes=[{"status": "maybe"}])]},
     "refresh_outcomes[0]"),
    ({"accounts": [account("fca_1", "cus_nobody")]}, "cus_nobody"),
    ({"customers": [customer("cus_A"), customer("cus_A")]}, "duplicate"),
    ({"customers": [customer("cus_A")], "payouts": []}, "payouts"),
    ([1, 2], "JSON object"),
    ({"customers": [customer("cus_A", note=object())]}, "plain JSON"),
    ({"customers": [customer("cus_A", created=float("nan"))]}, "plain JSON"),
])
def test_bad_fixtures_raise_fixture_error_and_load_nothing(sandbox, fixtures, message):
    with pytest.raises(FixtureError, match=message.replace("[", r"\[").replace("]", r"\]")):
        sandbox.load_fixtures(fixtures)
    assert sandbox.stats()["customers"] == 0


def test_fixture_file_errors(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"customers": [}')
    with pytest.raises(FixtureError, match=r"not valid JSON.*line 1"):
        load_fixtures_file(broken)
    with pytest.raises(FixtureError, match="does not exist"):
        load_fixtures_file(tmp_path / "absent.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]}))
    assert load_fixtures_file(good)["accounts"][0]["id"] == "fca_1"


def test_reloading_replaces_objects(sandbox):
    sandbox.load_fixtures({"customers": [customer("cus_A", email="old@example.com")]})
    sandbox.load_fixtures({"customers": [customer("cus_A", email="new@example.com")]})
    client = sdk(sandbox)
    assert client.v1.customers.retrieve("cus_A").email == "new@example.com"
    assert client.v1.customers.list({"email": "old@example.com"}).data == []
    assert len(client.v1.customers.list().data) == 1


def test_admin_api(sandbox, raw):
    client = raw(sandbox)
    loaded = client.post("/_sandbox/fixtures", json={"customers": [customer("cus_A")],
                                                     "accounts": [account("fca_1", "cus_A")]})
    assert loaded.json() == {"loaded": {"customers": 1, "accounts": 1}}
    bad = client.post("/_sandbox/fixtures", json={"accounts": [account("fca_2", "cus_A", status="odd")]})
    assert bad.status_code == 400 and "unknown status" in bad.json()["error"]["message"]
    not_json = client.post("/_sandbox/fixtures", content=b"{nope")
    assert not_json.status_code == 400
    settings = client.post("/_sandbox/settings", json={"refresh_cooldown": 60, "refresh_latency": [0, 0]})
    assert settings.json()["refresh_cooldown"] == 60
    assert client.post("/_sandbox/settings", json={"colour": 1}).status_code == 400
    assert client.post("/_sandbox/settings", json={"fault_rate": 2}).status_code == 400
    before = client.get("/_sandbox/stats").json()["now"]
    after = client.post("/_sandbox/clock", json={"advance_seconds": 3600}).json()["now"]
    assert after - before >= 3600
    assert client.post("/_sandbox/clock", json={"advance_seconds": -1}).status_code == 400
    assert client.get("/_sandbox/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/_sandbox/reset").json() == {"reset": True}
    assert client.get("/v1/customers").json()["data"] == []


def test_cli_bad_flag_and_bad_fixtures_exit_2_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--refresh-latency", "fast"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--refresh-latency" in err
    broken = tmp_path / "f.json"
    broken.write_text("[not json")
    assert main(["--fixtures", str(broken), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not valid JSON" in err


def test_cli_process_prints_address_serves_and_exits_0_on_sigterm(tmp_path):
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--demo-customers", "3", "--fixtures",
         str(fixtures), "--api-key", "sk_live_custom", "--mode", "live"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("stripe_sandbox listening on http://127.0.0.1:")
        base_url = line.split()[-1]
        accounts = httpx.get(f"{base_url}/v1/financial_connections/accounts",
                             headers={"Authorization": "Bearer sk_live_custom"}, params={"limit": 100}).json()
        assert all(a["livemode"] is True for a in accounts["data"])
        assert "fca_1" in {a["id"] for a in accounts["data"]}
        customers = httpx.get(f"{base_url}/v1/customers", headers={"Authorization": "Bearer sk_live_custom"},
                              params={"limit": 100}).json()["data"]
        assert len(customers) == 4  # --demo-customers given with --fixtures: both
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "sk_live_custom" not in out + err + line


def test_cli_fixtures_alone_load_no_demo_customers(tmp_path):
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps({"customers": [customer(f"cus_{i}") for i in range(14)]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--fixtures", str(fixtures)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        base_url = process.stdout.readline().split()[-1]
        customers = httpx.get(f"{base_url}/v1/customers", headers={"Authorization": "Bearer sk_test_sandbox"},
                              params={"limit": 100}).json()["data"]
        assert sorted(c["id"] for c in customers) == sorted(f"cus_{i}" for i in range(14))
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_live_mode_objects_and_limits(sandbox_factory, raw):
    sb = sandbox_factory(mode="live", api_key="my-own-key")
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    assert sdk(sb).v1.customers.retrieve("cus_A").livemode is True
    refreshed = sdk(sb).v1.financial_connections.accounts.refresh("fca_1", {"features": ["balance"]})
    assert refreshed.livemode is True
    assert raw(sb).get("/_sandbox/settings").json()["rate_limit_global"] == 100
    with pytest.raises(stripe.AuthenticationError):
        sdk(sb, key="sk_test_sandbox").v1.customers.list()
