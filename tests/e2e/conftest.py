"""The stack `make e2e` walks through: one per Compose version, each in a fresh copy of this
checkout with its own project, network, ports and images, torn down even after a failure."""

import signal
import tempfile
from pathlib import Path

import pytest

from tests.programs.e2e_base import stack_images
from tests.programs.e2e_stack import Stack
from tests.support.compose_versions import compose_v1

# Stopped from outside (CI's time limit, ^C from a shell): pytest tears down all the same.
signal.signal(signal.SIGTERM, signal.default_int_handler)

VERSIONS = ["v2", "v1"] if compose_v1() else ["v2"]


def pytest_report_header() -> str:
    if len(VERSIONS) == 1:
        return (
            "e2e: docker-compose 1.29 is not installed: Compose v1 skipped (apt-get install docker-compose)"
        )
    return "e2e: Compose v2, then Compose v1"


@pytest.fixture(scope="session")
def local_images() -> dict:
    """The images of docker-compose.placeholders.yml, built here, where the real ones cannot
    all be pulled; none where they can."""
    chosen, images = stack_images()
    print(f"\ne2e images: {chosen}")
    return images


@pytest.fixture(scope="session", params=VERSIONS)
def stack(request, local_images):
    with tempfile.TemporaryDirectory(prefix=f"e2e-{request.param}-") as work:
        stack = Stack(request.param, local_images, Path(work))
        stack.refuse_if_in_use()  # someone else's: not ours to tear down
        try:
            yield stack
        finally:
            stack.tear_down()


def pytest_terminal_summary(terminalreporter) -> None:
    """What each hop measured, as the closing notes quote it."""
    reports = [report for report in terminalreporter.stats.get("passed", []) if report.when == "call"]
    if reports:
        terminalreporter.write_sep("-", "what each hop measured")
    for report in reports:
        detail = dict(report.user_properties).get("detail")
        terminalreporter.write_line(
            f"{report.nodeid.split('::')[-1]}  {report.duration:.0f} s" + (f", {detail}" if detail else "")
        )
