"""`make check`'s rules (scripts/check.py), in a checkout's copy: unknown names with the
closest known one, every bad value with its reader's own line, all at once."""

import os
import shutil

import pytest

from scripts import check
from tests.support import ROOT


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    for name in (*check.COMPOSE_FILES, ".env.example", "stack", "flows"):
        source = ROOT / name
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    for name in ("LATE_MINUTES", "NOTIFY_WEBHOOK_URL", "DASK_WORKERS", "UI_PORT", "PAGE_SIZE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_a_good_env_has_no_problem(checkout):
    (checkout / ".env").write_text((ROOT / ".env.example").read_text() + "LATE_MINUTES=5\nPAGE_SIZE=500\n")
    assert check.problems(checkout) == []


def test_every_problem_is_said_at_once_each_in_its_readers_words(checkout):
    (checkout / ".env").write_text(
        "# LATE_MINUTS=1 (a comment is no setting)\nLATE_MINUTS=5\nLATE_MINUTES=never\n"
        "NOTIFY_WEBHOOK_URL=not-a-url\nDASK_WORKERS=abc\nUI_PORT=80000\nWHATEVER_ELSE=1\n"
    )
    assert check.problems(checkout) == [
        "LATE_MINUTS in .env is not a setting: did you mean LATE_MINUTES?",
        "WHATEVER_ELSE in .env is not a setting: docs/settings.md lists every setting",
        "DASK_WORKERS='abc' is not allowed: use a whole number from 1 to 64",
        "LATE_MINUTES='never' is not allowed: use a number from 1 to 10,080",
        "NOTIFY_WEBHOOK_URL='not-a-url' is not allowed: use an http:// or https:// address",
        "UI_PORT='80000' is not allowed: use a whole number from 1 to 65,535",
    ]


def test_the_shared_login_of_an_earlier_version_says_what_to_do_instead(checkout):
    (checkout / ".env").write_text("UI_USER=prefect\nUI_PASSWORD_HASH=aGFzaA==\n")
    assert check.problems(checkout) == [
        f"{name} in .env is no longer read: people log in as themselves now; delete that line, "
        "make up, then make user NAME=<you> ROLE=admin (docs/security.md#people-and-roles)"
        for name in ("UI_PASSWORD_HASH", "UI_USER")
    ]


def test_the_shell_wins_over_env_as_in_compose(checkout, monkeypatch):
    (checkout / ".env").write_text("PAGE_SIZE=0\n")
    monkeypatch.setenv("PAGE_SIZE", "100")
    assert check.problems(checkout) == []
    monkeypatch.setenv("PAGE_SIZE", "")  # empty: unset, .env's applies
    assert check.problems(checkout) == ["PAGE_SIZE='0' is not allowed: use a whole number from 1 to 5,000"]


def test_the_process_environment_is_left_as_it_was(checkout, monkeypatch):
    monkeypatch.setenv("UI_PORT", "x")
    (checkout / ".env").write_text("LATE_MINUTES=never\n")
    check.problems(checkout)
    assert os.environ["UI_PORT"] == "x" and "LATE_MINUTES" not in os.environ


def test_a_reports_folder_or_ledger_the_flow_runs_cannot_write_is_one_line_each(tmp_path, monkeypatch):
    monkeypatch.setattr(check.os, "getuid", lambda: 4242)  # a user, not root: nothing is repaired
    reports = tmp_path / "reports"
    reports.mkdir()
    ledger = reports / ".users-api-budget.json"
    ledger.write_text("{}")
    os.chown(reports, 1000, -1)
    os.chmod(reports, 0o755)
    os.chown(ledger, 0, -1)
    os.chmod(ledger, 0o644)
    environ = {"HOST_REPORTS_DIR": str(reports), "APP_UID": "1000"}
    assert check.reports_problems(environ) == [
        f"HOST_REPORTS_DIR: {ledger} cannot be written by the flow runs' user (uid 1000, APP_UID), "
        f"its owner is uid 0: sudo chown 1000 {ledger}"
    ]
    os.chown(ledger, 1000, -1)
    assert check.reports_problems(environ) == []
    os.chmod(reports, 0o555)
    assert len(check.reports_problems(environ)) == 1


def test_as_root_make_up_repairs_instead_of_refusing(tmp_path, monkeypatch):
    monkeypatch.setattr(check.os, "getuid", lambda: 0)  # dotenv.prepare gives them to APP_UID
    reports = tmp_path / "reports"
    reports.mkdir(mode=0o700)
    os.chown(reports, 0, -1)
    assert check.reports_problems({"HOST_REPORTS_DIR": str(reports), "APP_UID": "1000"}) == []


@pytest.mark.parametrize(
    "lines, problems",
    [
        ("ALERT_EMAIL_TO=ops@example.org, chief@example.org\nSMTP_SMARTHOST=mail.example.org:587\n", []),
        (
            "ALERT_EMAIL_TO=ops@example.org\n",
            ["ALERT_EMAIL_TO='ops@example.org' is not allowed without SMTP_SMARTHOST (host:port)"],
        ),
        (
            'ALERT_EMAIL_TO=ops@example.org"\nSMTP_SMARTHOST=mail.example.org\nSMTP_USER=a b\n',
            [
                "ALERT_EMAIL_TO='ops@example.org\"' is not allowed: use e-mail addresses separated by commas",
                "SMTP_SMARTHOST='mail.example.org' is not allowed: use the mail server as host:port, say mail.example.org:587",
                "SMTP_USER='a b' is not allowed: use a user name without blanks, quotes or backslashes",
            ],
        ),
        ("SMTP_FROM=nobody\nSMTP_REQUIRE_TLS=maybe\n", [
            "SMTP_FROM='nobody' is not allowed: use one e-mail address",
            "SMTP_REQUIRE_TLS='maybe' is not allowed: use true or false",
        ]),
    ],
)  # fmt: skip
def test_the_mail_settings_cannot_break_alertmanagers_configuration(lines, problems, checkout, monkeypatch):
    """monitoring/alertmanager.sh writes them into YAML as they are."""
    for name in ("ALERT_EMAIL_TO", "SMTP_SMARTHOST", "SMTP_FROM", "SMTP_USER", "SMTP_REQUIRE_TLS"):
        monkeypatch.delenv(name, raising=False)
    (checkout / ".env").write_text(lines)
    assert check.problems(checkout) == problems
