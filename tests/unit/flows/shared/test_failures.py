from prefect import Flow, task
from prefect.engine.state import Failed, Success, TriggerFailed

from flows.shared import failures


@task
def first():
    pass


@task
def second():
    pass


def flow_of_two():
    with Flow("two") as flow:
        second(upstream_tasks=[first()])
    return flow


def test_the_first_task_that_failed_by_itself_names_the_reason():
    flow = flow_of_two()
    one, two = flow.sorted_tasks()
    states = {one: Failed("the API said 503"), two: TriggerFailed("upstream failed")}
    assert failures.first_failure(flow, states) == "the API said 503"
    assert failures.first_failure(flow, {one: Success(), two: Success()}) is None


def test_a_failed_local_run_says_why_and_a_success_is_left_alone():
    flow = flow_of_two()
    one, two = flow.sorted_tasks()
    failed = Failed("Some reference tasks failed.", result={one: Failed("bad n_users"), two: TriggerFailed()})
    assert failures.say_why(flow, None, failed).message == "bad n_users"
    success = Success(result={})
    assert failures.say_why(flow, None, success) is success
