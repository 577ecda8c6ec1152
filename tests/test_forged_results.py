"""A task run state sent through the API may name any file as its result; the run's next
container must not unpickle it (flows/shared/results.py). Through the API stand-in, the
agent as agent/start.py builds it, and the run's container command run here."""

import pickle

import prefect
from prefect.engine.results import LocalResult
from prefect.engine.state import Success

from tests.support.agent_runs import adhoc_run, client, run_container_here, task_runs
from tests.support.planted import Planted


def test_a_result_location_outside_the_runs_folder_fails_the_run_and_is_never_read(
    standin, stack_env, tmp_path
):
    marker, planted = tmp_path / "unpickled", tmp_path / "planted.prefect"
    planted.write_bytes(pickle.dumps(Planted(marker)))
    run_id, create, _ = adhoc_run(standin, stack_env, 5, start=False)
    plan = next(task for task in standin.tables["task"].values() if task["slug"] == "plan_pages-1")
    forged = Success("forged", result=LocalResult(dir="/", location=str(planted), validate_dir=False))
    with client(standin):
        api = prefect.Client()
        task_run = api.get_task_run_info(flow_run_id=run_id, task_id=plan["id"], map_index=-1)
        api.set_task_run_state(task_run_id=task_run.id, version=task_run.version, state=forged)

    result = run_container_here(create, stack_env)

    assert standin.tables["flow_run"][run_id]["state"] == "Failed", result.stderr[-2000:]
    refused = [
        run["state_message"]
        for run in task_runs(standin, run_id).values()
        if "refused to read a task result" in (run["state_message"] or "")
    ]
    assert (
        refused
        and f"refused to read a task result from {planted}: results are read from this run's own folder"
        in refused[0]
    )
    assert not marker.exists()
