from types import SimpleNamespace

from agent.running_limit import RunningLimit


def runs(*ids, flow="a"):
    return [SimpleNamespace(id=run_id, flow=flow) for run_id in ids]


def admit(limit, due, limits, running=()):
    return limit.admit(
        due, key_of=lambda run: run.flow, limit_of=limits.get, running_of=lambda run: set(running)
    )


def test_runs_over_the_limit_are_held_and_the_rest_admitted_in_order():
    limit = RunningLimit()
    admitted, held = admit(limit, runs("r1", "r2", "r3"), {"a": 2})
    assert [run.id for run in admitted] == ["r1", "r2"] and [run.id for run in held] == ["r3"]
    assert limit.deploying == {"r1": "a", "r2": "a"}


def test_the_servers_running_runs_count_but_not_twice_those_being_deployed():
    limit = RunningLimit()
    admit(limit, runs("r1"), {"a": 2})
    # r1 now reads as Submitted on the server and is still being deployed: counted once.
    admitted, held = admit(limit, runs("r2", "r3"), {"a": 2}, running={"r1"})
    assert [run.id for run in admitted] == ["r2"] and [run.id for run in held] == ["r3"]


def test_a_run_started_elsewhere_takes_a_place():
    admitted, held = admit(RunningLimit(), runs("r2"), {"a": 1}, running={"elsewhere"})
    assert admitted == [] and [run.id for run in held] == ["r2"]


def test_no_limit_and_no_key_admit_everything():
    limit = RunningLimit()
    assert len(admit(limit, runs("r1", "r2", "r3"), {"a": 0})[0]) == 3
    admitted, _ = limit.admit(runs("x", "y"), key_of=lambda run: None, limit_of=None, running_of=None)
    assert len(admitted) == 2


def test_each_flow_counts_apart():
    limit = RunningLimit()
    admitted, held = admit(limit, runs("a1", "a2") + runs("b1", flow="b"), {"a": 1, "b": 1})
    assert [run.id for run in admitted] == ["a1", "b1"] and [run.id for run in held] == ["a2"]


def test_an_ended_deployment_frees_its_place():
    limit = RunningLimit()
    admit(limit, runs("r1"), {"a": 1})
    assert admit(limit, runs("r2"), {"a": 1})[0] == []
    limit.ended("r1")
    limit.ended("never-deployed")  # nothing to free
    assert [run.id for run in admit(limit, runs("r2"), {"a": 1})[0]] == ["r2"]


def test_a_held_run_is_told_why_once():
    limit = RunningLimit()
    assert limit.first_wait("r1") is True
    assert limit.first_wait("r1") is False
    assert limit.first_wait("r2") is True


def test_a_run_handed_back_running_takes_a_place_and_does_not_count_itself():
    """Three runs set Running by hand, each with a task run due: MAX_RUNNING=1 deploys one."""
    limit = RunningLimit()
    set_running = {"r1", "r2", "r3"}
    admitted, held = admit(limit, runs("r1", "r2", "r3"), {"a": 1}, running=set_running)
    assert admitted == [] and len(held) == 3  # each counts the other two
    admitted, _ = admit(RunningLimit(), runs("r1"), {"a": 1}, running={"r1"})
    assert [run.id for run in admitted] == ["r1"]  # alone, its own state takes no place
