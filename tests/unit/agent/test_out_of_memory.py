import logging

import pytest

from agent import out_of_memory


def oom(run_id=None, flow_id=None):
    labels = {}
    if run_id:
        labels["io.prefect.flow-run-id"] = run_id
    if flow_id:
        labels["io.prefect.flow-id"] = flow_id
    return {"Type": "container", "Action": "oom", "Actor": {"Attributes": labels}}


def test_killed_runs_are_the_flow_containers_events():
    events = [oom("run-1", "flow-1"), oom(), {"Actor": {}}, oom("run-2")]
    assert list(out_of_memory.killed_runs(events)) == [("run-1", "flow-1"), ("run-2", None)]


class Stop(Exception):
    """Ends the watch, which otherwise goes on for ever."""


def test_the_watch_fails_each_run_survives_a_failing_api_and_watches_again(monkeypatch, caplog):
    streams = iter([[oom("run-1", "f"), oom("run-2", "f")], ConnectionError("engine restarted")])

    class Docker:
        def events(self, decode, filters):
            assert decode and filters == out_of_memory.EVENT_FILTERS
            stream = next(streams)
            if isinstance(stream, Exception):
                raise stream
            return iter(stream)

    failed = []

    def fail_run(run_id, flow_id):
        failed.append(run_id)
        if run_id == "run-1":
            raise RuntimeError("the API is down")

    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise Stop

    monkeypatch.setattr(out_of_memory.time, "sleep", sleep)
    with caplog.at_level(logging.INFO), pytest.raises(Stop):
        out_of_memory.watch(Docker, fail_run, logging.getLogger("agent"), pause=3)
    assert failed == ["run-1", "run-2"] and sleeps == [3, 3]
    assert "Could not fail an out-of-memory run" in caplog.text
    assert "out-of-memory kills are told again in 3 s" in caplog.text
