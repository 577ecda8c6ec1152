import pendulum
import prefect

from flows.users_report import flows


def test_the_flow_is_the_tutorials_with_its_parameter_and_report_as_reference():
    assert flows.flow.name == "Users report"
    (parameter,) = flows.flow.parameters()
    assert parameter.name == "n_users" and parameter.default == 10
    assert flows.flow.reference_tasks() == {flows.report}


def test_results_are_kept_in_the_runs_own_staging_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path))
    with prefect.context(scheduled_start_time=pendulum.datetime(2026, 1, 2), flow_run_id="abcdef12-0000"):
        location = flows.flow.result.location_in_folder("download_data[3]")
    assert location == str(
        tmp_path / ".staging-users-report-20260102T000000Z-abcdef12" / "results" / "download_data[3].prefect"
    )


def test_the_executor_is_threads_unless_a_dask_address_is_set(monkeypatch):
    monkeypatch.delenv("DASK_ADDRESS", raising=False)
    monkeypatch.setenv("DOWNLOAD_WORKERS", "3")
    executor = flows.PipelineExecutor()
    with executor.start():
        assert executor.chosen.scheduler == "threads" and executor.chosen.dask_config == {"num_workers": 3}
        assert executor.wait(executor.submit(lambda: 42)) == 42
