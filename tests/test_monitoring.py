"""monitoring/ with Debian's own Prometheus tools: every alert fires and resolves as
rules.test.yml says (promtool test rules), the configurations load (promtool check config,
amtool check-config), Alertmanager started as the stack starts it sends to Slack and by
e-mail as the settings ask, and the Grafana dashboard asks only for metrics the exporter
serves."""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from tests.support import ROOT, free_port
from tests.support.smtp_receiver import SmtpReceiver
from tests.support.webhook_receiver import WebhookReceiver

MONITORING = ROOT / "monitoring"


def tool(*args) -> subprocess.CompletedProcess:
    if not shutil.which(args[0]):
        pytest.fail(f"{args[0]} is not installed: apt-get install prometheus prometheus-alertmanager")
    return subprocess.run(args, cwd=MONITORING, capture_output=True, text=True, timeout=120)


def test_each_alert_fires_and_resolves_as_its_test_says():
    result = tool("promtool", "test", "rules", "rules.test.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_each_alert_has_a_summary_and_a_link():
    rules = re.findall(r"- alert: (\w+)", (MONITORING / "rules.yml").read_text())
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "rules.test.yml").read_text()))
    assert set(rules) == tested, set(rules) ^ tested
    text = (MONITORING / "rules.yml").read_text()
    assert text.count("summary:") == text.count("runbook_url:") == len(rules)


def test_prometheus_configuration_loads():
    prometheus = tool("promtool", "check", "config", "prometheus.yml")
    assert prometheus.returncode == 0, prometheus.stdout + prometheus.stderr


@pytest.mark.parametrize(
    "settings, receivers",
    [
        ({}, ""),
        ({"NOTIFY_WEBHOOK_URL": "https://hooks.example.org/T/B/x"}, "slack"),
        ({"ALERT_EMAIL_TO": "ops@example.org", "SMTP_SMARTHOST": "mail.example.org:587"}, "email"),
        ({"NOTIFY_WEBHOOK_URL": "https://hooks.example.org/T/B/x", "ALERT_EMAIL_TO": "a@example.org,b@example.org",
          "SMTP_SMARTHOST": "mail.example.org:587", "SMTP_USER": "alerts", "SMTP_PASSWORD": "x"}, "slack email"),
    ],
)  # fmt: skip
def test_alertmanagers_configuration_loads_for_each_choice_of_receivers(settings, receivers, tmp_path):
    """alertmanager.sh's configuration, checked by amtool where the stack starts Alertmanager."""
    tool("amtool", "--version")
    (tmp_path / "alertmanager").write_text('#!/bin/sh\nexec amtool check-config "${1#--config.file=}"\n')
    (tmp_path / "alertmanager").chmod(0o755)
    checked = subprocess.run(
        ["sh", MONITORING / "alertmanager.sh"],
        env={"PATH": f"{tmp_path}:{os.environ['PATH']}", "ALERTMANAGER_DATA": str(tmp_path), **settings},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
    made = (tmp_path / "alertmanager.yml").read_text()
    assert " ".join(kind for kind in ("slack", "email") if f"{kind}_configs:" in made) == receivers


def test_the_dashboard_asks_only_for_what_the_exporter_serves():
    served = set(re.findall(r'"(prefect_\w+)"', (ROOT / "exporter" / "metrics.py").read_text()))
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(prefect_\w+)", target["expr"])
    }
    assert asked and asked <= served, asked - served
    rules = set(re.findall(r"\b(prefect_\w+)", (MONITORING / "rules.yml").read_text()))
    assert rules <= served, rules - served


@pytest.fixture
def start_alertmanager(tmp_path):
    """Debian's Alertmanager started by monitoring/alertmanager.sh as the stack starts it, on
    loopback, its groups sent after 1 s rather than 30 s; stopped after the test (or 120 s)."""
    started = []

    def start(**settings) -> tuple:
        folder = tmp_path / f"alertmanager-{len(started)}"
        shutil.copytree(MONITORING, folder / "monitoring")
        config = folder / "monitoring" / "alertmanager.yml"
        config.write_text(config.read_text().replace("group_wait: 30s", "group_wait: 1s"))
        (folder / "data").mkdir()
        (folder / "bin").mkdir()
        (folder / "bin" / "alertmanager").symlink_to(shutil.which("prometheus-alertmanager"))
        address = f"127.0.0.1:{free_port()}"
        log = open(folder / "log", "w")  # noqa: SIM115 - closed with the process
        started.append((subprocess.Popen(
            ["timeout", "120", "sh", folder / "monitoring" / "alertmanager.sh", f"--web.listen-address={address}",
             "--cluster.listen-address=", "--web.route-prefix=/alertmanager"],
            env={"PATH": f"{folder / 'bin'}:{os.environ['PATH']}", "ALERTMANAGER_DATA": str(folder / "data"), **settings},
            stdout=log, stderr=subprocess.STDOUT,
        ), log))  # fmt: skip
        api = f"http://{address}/alertmanager/api/v2"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{api}/status", timeout=2)
                return api, folder / "data"
            except OSError:
                assert time.monotonic() < deadline, (folder / "log").read_text()
                time.sleep(0.2)

    if not shutil.which("prometheus-alertmanager"):
        pytest.fail("prometheus-alertmanager is not installed: apt-get install prometheus-alertmanager")
    yield start
    for process, log in started:
        process.terminate()
        process.wait(10)
        log.close()


RUN_FAILED = {
    "labels": {"alertname": "RunFailed", "flow": "Users report", "project": "Data office", "severity": "warning"},
    "annotations": {
        "summary": 'Failed runs of "Users report" in the last hour: 2. The last, brave-owl: n_users must be a whole number',
        "runbook_url": "http://localhost:8080/default/flow-run/r-2",
    },
}  # fmt: skip


def post_alert(api: str, alert: dict) -> None:
    request = urllib.request.Request(
        f"{api}/alerts", json.dumps([alert]).encode(), {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=5)


def test_alerts_reach_slack_and_e_mail_with_the_secrets_kept_out_of_the_configuration(start_alertmanager):
    slack, mail = WebhookReceiver(), SmtpReceiver()
    try:
        api, data = start_alertmanager(
            NOTIFY_WEBHOOK_URL=slack.url,
            ALERT_EMAIL_TO="ops@example.org, chief@example.org",
            SMTP_SMARTHOST=mail.smarthost,
            SMTP_REQUIRE_TLS="false",
            SMTP_USER="",
            SMTP_PASSWORD="mail-secret",
        )
        post_alert(api, RUN_FAILED)
        ((recipients, message),) = mail.wait()
        texts = [attachment for body in slack.bodies for attachment in body["attachments"]]
        deadline = time.monotonic() + 10
        while not texts and time.monotonic() < deadline:
            time.sleep(0.1)
            texts = [attachment for body in slack.bodies for attachment in body["attachments"]]
    finally:
        slack.stop()
        mail.stop()
    summary = RUN_FAILED["annotations"]["summary"]
    (attachment,) = texts
    assert attachment["title"] == "[RunFailed]"
    assert attachment["text"] == f"{summary} http://localhost:8080/default/flow-run/r-2\n"
    assert recipients == ["ops@example.org", "chief@example.org"]
    assert message["Subject"] == "[RunFailed] Users report"
    assert message["From"] == "prefect-alerts@localhost"
    assert summary in message.get_body(("plain",)).get_content()
    configuration = (data / "alertmanager.yml").read_text()
    assert slack.url not in configuration and "mail-secret" not in configuration
    for secret in ("webhook-url", "smtp-password"):
        assert (data / secret).stat().st_mode & 0o077 == 0, secret


def test_without_a_receiver_alerts_are_kept_and_sent_nowhere(start_alertmanager):
    api, data = start_alertmanager()
    post_alert(api, RUN_FAILED)
    time.sleep(2)  # a group is sent 1 s after its first alert here
    with urllib.request.urlopen(f"{api}/alerts", timeout=5) as answer:
        (kept,) = json.loads(answer.read())
    assert kept["labels"]["alertname"] == "RunFailed" and kept["receivers"] == [{"name": "team"}]
    assert not (data / "webhook-url").exists() and not (data / "smtp-password").exists()
    assert "_configs" not in (data / "alertmanager.yml").read_text()
