import json

from flows.users_report import pacing


def test_the_budget_books_until_the_limit_then_says_how_long_to_wait(tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(pacing.time, "time", lambda: now[0])
    budget = pacing.Budget(limit=10, window=300, ledger=tmp_path / pacing.LEDGER_NAME)
    assert budget.take(6) == 0 and budget.take(4) == 0
    now[0] = 1100.0
    assert budget.take(1) == 200.0  # until the first booking leaves the window
    now[0] = 1300.5
    assert budget.take(5) == 0


def test_a_pause_after_a_429_stops_every_run_sharing_the_ledger(tmp_path, monkeypatch):
    monkeypatch.setattr(pacing.time, "time", lambda: 50.0)
    ledger = tmp_path / pacing.LEDGER_NAME
    assert pacing.Budget(10, 60, ledger).pause() == 60
    assert pacing.Budget(10, 60, ledger).take(1) == 60
    assert pacing.Budget(0, 60, ledger).take(1) == 60  # even an unlimited API waits out a 429


def test_no_limit_and_no_ledger_touches_nothing(tmp_path):
    ledger = tmp_path / pacing.LEDGER_NAME
    assert pacing.Budget(0, 60, ledger).take(5000) == 0 and not ledger.exists()


def test_a_ledger_cut_short_starts_afresh(tmp_path):
    ledger = tmp_path / pacing.LEDGER_NAME
    ledger.write_text('{"asked": [[1, ')
    assert pacing.Budget(10, 60, ledger).take(3) == 0
    assert len(json.loads(ledger.read_text())["asked"]) == 1


def test_minimum_wait_counts_the_whole_windows_a_run_needs():
    assert pacing.minimum_wait(20_000, 5000, 20_000, 300) == 0
    assert pacing.minimum_wait(20_001, 5000, 20_000, 300) == 300
    assert pacing.minimum_wait(1_000_000, 5000, 20_000, 300) == 49 * 300
    assert pacing.minimum_wait(1_000_000, 5000, 0, 300) == 0
