"""Registers every flow package under flows/ with Prefect Server, each on its schedule.

    python register.py               make the changed flows' images and register them
    python register.py --flow NAME   only the package flows/NAME
    python register.py --skip-build  register, reusing the flow images made before
    python register.py --dry-run     print what would be registered, as JSON (needs neither)

Each flow's image is the project image this runs in, under the flow's name and version,
kept by Prefect's Docker storage with the flow as the script the image already holds, so
the Python that registers it and the Python that runs it never have to match. A flow whose
code and deployment are those of its current version is skipped: no image, no new version
(stack/catalog.py says what makes a version).
"""

import argparse
import json
import sys
import time

import docker
import prefect
from prefect.run_configs import DockerRun
from prefect.storage import Docker
from prefect.storage import _healthcheck as healthcheck
from prefect.utilities.graphql import with_args

from stack.catalog import FlowPackage, packages
from stack.server import ensure_alert_hook, ensure_project
from stack.settings import StackSettings, load_stack_settings


def deployment(package: FlowPackage, settings: StackSettings):
    """The package's flow with its schedule, run config and storage attached."""
    package.check_settings()  # as the agent does at its start: one refusing them, both do
    flow = package.load_flow()
    declared = package.deployment(settings)
    flow.schedule = package.load_schedule()
    flow.run_config = DockerRun(labels=list(declared.labels))
    flow.storage = Docker(
        registry_url=settings.registry_url or None,
        image_name=settings.flow_image,
        image_tag=package.version(),
        stored_as_script=True,
        path=package.script_in_image,
    )
    # Storage must know the flow's script even when it is not built: a flow registered
    # with `flows: {}` cannot be loaded by its runs.
    flow.storage.add_flow(flow)
    return flow, declared


def current_version(client: prefect.Client, flow, project: str):
    """The id and idempotency key of the flow's current version on the server, or Nones (the
    server keeps the key in the flow group's settings: PrefectHQ/server 0f74a9a
    api/flows.py 207-229)."""
    where = {"name": {"_eq": flow.name}, "archived": {"_eq": False}, "project": {"name": {"_eq": project}}}
    found = client.graphql(
        {"query": {with_args("flow", {"where": where}): {"id": True, "flow_group": {"settings"}}}}
    ).data.flow
    if not found:
        return None, None
    return found[0].id, (found[0].flow_group.settings or {}).get("idempotency_key")


def make_flow_image(flow, package: FlowPackage, settings: StackSettings) -> None:
    """Tags the project image as the flow's image, after Prefect's own health checks of the
    flow (those its Docker storage runs in a build) pass here, in that same image; pushes it
    when REGISTRY_URL is set, then drops the local tag, as Docker storage does. Building
    instead would add Docker storage's seven layers (pip steps, a copy of the check, USER)
    to every changed flow: the project image already ends as user app."""
    flows = healthcheck.import_flow_from_script_check([str(package.folder / "flows.py")])
    healthcheck.result_check(flows, quiet=True)
    healthcheck.environment_dependency_check(flows)
    repository, tag = flow.storage.name.rsplit(":", 1)
    engine = docker.from_env()
    engine.images.get(settings.project_image).tag(repository, tag)
    if flow.storage.registry_url:
        flow.storage.push_image(repository, tag)
        engine.images.remove(flow.storage.name)


def image_exists(flow) -> bool:
    try:
        docker.from_env().images.get(flow.storage.name)
    except docker.errors.ImageNotFound:
        return False
    return True


def register(flow, package: FlowPackage, declared, settings: StackSettings, build: bool) -> None:
    client = prefect.Client()
    ensure_project(client, declared.project)
    key = flow.serialized_hash()  # the same code, schedule and run config: the same key
    flow_id, current_key = current_version(client, flow, declared.project)
    if current_key == key and (not build or image_exists(flow)):
        print(f"{flow.name}: skipped (unchanged since its current version)")
    else:
        begun = time.monotonic()
        if build:
            make_flow_image(flow, package, settings)
        built = time.monotonic()
        flow_id = flow.register(project_name=declared.project, build=False, idempotency_key=key)
        image = f"image {flow.storage.name} made in {built - begun:.1f} s, " if build else ""
        print(f"{flow.name}: {image}registered in {time.monotonic() - built:.1f} s")
    url = settings.notify_webhook_url if declared.alerts else ""
    ensure_alert_hook(client, flow_id, url, settings.notify_on)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow", default="", help="only this package of flows/ (its folder name)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the registrations as JSON; make and send nothing"
    )
    parser.add_argument("--skip-build", action="store_true", help="register without making the flow images")
    args = parser.parse_args(argv)
    try:
        settings = load_stack_settings()
        deployments = [(package, *deployment(package, settings)) for package in packages(only=args.flow)]
    except ValueError as exc:  # a bad setting, schedule or package: CatalogError, SettingsError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(
            json.dumps(
                {
                    "flows": [
                        {
                            "name": flow.name,
                            "project": declared.project,
                            "serialized_flow": flow.serialize(build=False),
                            "next_runs": [when.isoformat() for when in flow.schedule.next(5)]
                            if flow.schedule
                            else [],
                        }
                        for _, flow, declared in deployments
                    ]
                }
            )
        )
        return 0
    for package, flow, declared in deployments:
        register(flow, package, declared, settings, build=not args.skip_build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
