"""The "Users report" flow: download random users, parse them, save them as a CSV report."""
from prefect import Flow, Parameter
from prefect.executors import LocalDaskExecutor

from flows.users_report.tasks import (
    SETTINGS,
    download_data,
    parse_data,
    plan_pages,
    remove_staging,
    save_report,
)

with Flow("Users report") as flow:
    n_users = Parameter("n_users", default=10)
    pages = plan_pages(n_users)
    report = save_report(parse_data(download_data.map(pages)))
    remove_staging(upstream_tasks=[report])

# The run succeeds or fails with its report, whatever the clean-up does.
flow.set_reference_tasks([report])
# Threads suffice: the page downloads mostly wait on the network.
flow.executor = LocalDaskExecutor(scheduler="threads", num_workers=SETTINGS.download_workers)
