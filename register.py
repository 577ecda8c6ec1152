"""Registers the "Users report" flow with Prefect Server, on its schedule.

    python register.py               build the flow image and register (needs the server, Docker)
    python register.py --skip-build  register, reusing the flow image built before
    python register.py --dry-run     print what would be registered, as JSON (needs neither)

The flow image is built by Prefect's Docker storage on top of the project image, with the
flow kept as the script the project image already holds, so the Python that registers it
and the Python that runs it never have to match. Settings: flows/users_report/settings.py.
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

import prefect
from prefect.run_configs import DockerRun
from prefect.storage import Docker

from deployment import ensure_alert_hook, ensure_project
from flows.users_report.schedules import build_schedule
from flows.users_report.settings import FLOW_SCRIPT_IN_IMAGE, load_stack_settings

ROOT = Path(__file__).resolve().parent


def code_version(root: Path = ROOT) -> str:
    """A hash of the flow's code and pins: the flow image's tag, and so its version. The
    rest of the image (the offline users API, the agent's start-up) is not the flow's."""
    digest = hashlib.sha256()
    for path in sorted(root.glob("flows/**/*.py")) + [root / "requirements.txt"]:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def deployment(settings):
    """The flow with its schedule, run config and storage attached."""
    from flows.users_report.flows import flow

    flow.schedule = build_schedule(settings)
    flow.run_config = DockerRun(labels=[settings.agent_label])
    flow.storage = Docker(
        registry_url=settings.registry_url or None,
        base_image=settings.project_image,
        local_image=True,  # built by `make up` on this Docker host, never pulled
        image_name=settings.flow_image,
        image_tag=code_version(),
        stored_as_script=True,
        path=FLOW_SCRIPT_IN_IMAGE,
        # Flow runs do not run as root; Docker storage's own pip steps come before this.
        extra_dockerfile_commands=["USER app"],
        # Remove the build's intermediate containers, even when it fails; docker-py keeps
        # them by default and each registration would leave some behind.
        build_kwargs={"rm": True, "forcerm": True},
    )
    return flow


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="print the registration as JSON; build and send nothing")
    parser.add_argument("--skip-build", action="store_true",
                        help="register without building the flow image")
    args = parser.parse_args(argv)
    try:
        settings = load_stack_settings()
        flow = deployment(settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Storage must know the flow's script even when it is not built: a flow registered
    # with `flows: {}` cannot be loaded by its runs.
    flow.storage.add_flow(flow)
    if args.dry_run:
        print(json.dumps({
            "project": settings.project,
            "serialized_flow": flow.serialize(build=False),
            "next_runs": [when.isoformat() for when in flow.schedule.next(5)],
        }))
        return 0
    ensure_project(prefect.Client(), settings.project)
    if not args.skip_build:
        flow.storage.build()  # pushes too, when REGISTRY_URL is set
    # The same code, schedule and settings give the same key: no new version.
    flow_id = flow.register(project_name=settings.project, build=False,
                            idempotency_key=flow.serialized_hash())
    ensure_alert_hook(prefect.Client(), flow_id, settings.notify_webhook_url, settings.notify_on)
    return 0


if __name__ == "__main__":
    sys.exit(main())
