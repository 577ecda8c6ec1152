from flows.server_housekeeping.flows import flow


def test_it_counts_deletes_ends_finds_late_records_and_fails_last():
    names = [task.name for task in flow.sorted_tasks()]
    assert names[0] == "keep_days" and names[-1] == "fail_if_late"
    assert names.index("delete_old_runs") < names.index("count_rows_after") < names.index("record")
    (parameter,) = flow.parameters()
    assert parameter.default is None  # SERVER_KEEP_DAYS, read when the run starts
