"""The console script's start-up without the cyclic collector: paused, frozen and always given back."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines import entry, startup


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    """Each test leaves the worker's collector as it found it: enabled, nothing frozen by the test."""
    frozen_before = gc.get_freeze_count()
    yield
    gc.enable()
    if gc.get_freeze_count() > frozen_before:
        gc.unfreeze()


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_begin_pauses_and_end_freezes_what_start_up_made() -> None:
    startup.begin()
    assert not gc.isenabled()
    made = [Node() for _ in range(1_000)]
    frozen_before = gc.get_freeze_count()
    startup.end()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(made)  # start-up's objects left out of later scans


def test_end_without_begin_changes_nothing() -> None:
    frozen_before = gc.get_freeze_count()
    startup.end()
    startup.end()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen_before


def test_a_command_that_fails_before_its_job_gives_the_collector_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """`run` ends the start-up only when its Dagster job starts: failing before that, the collector still comes
    back (a process that goes on, as a test's, keeps collecting)."""
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_x")
    monkeypatch.setenv("FC_BALANCES_WAREHOUSE", str(tmp_path / "wh"))
    monkeypatch.setenv("FC_BALANCES_BATCH_SIZE", "lots")
    assert entry.main(["run"]) == 1
    assert "FC_BALANCES_BATCH_SIZE" in capsys.readouterr().err
    assert gc.isenabled()
    assert not (tmp_path / "wh").exists()
