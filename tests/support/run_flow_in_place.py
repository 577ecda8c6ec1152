"""`prefect execute flow-run`, the flow container's command, run in this checkout.

The flow's Docker storage names its script by the path it has in the image
(/app/flows/...); this reads the same script from the checkout instead. Everything else,
loading it and running it, is Prefect's own.
"""

from pathlib import Path
from unittest import mock

import prefect.storage.docker
from prefect.cli import cli

from tests.support import ROOT

IMAGE_ROOT = "/app"
load_script = prefect.storage.docker.extract_flow_from_file


def from_checkout(file_path=None, **kwargs):
    return load_script(file_path=str(ROOT / Path(file_path).relative_to(IMAGE_ROOT)), **kwargs)


if __name__ == "__main__":
    with mock.patch.object(prefect.storage.docker, "extract_flow_from_file", from_checkout):
        cli(["execute", "flow-run"])
