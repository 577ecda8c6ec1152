"""The flows the stack deploys: every package `flows/<name>/` with a `flows.py`.

A package's optional `schedules.py` gives `schedule`; its optional `deployment.py` sets
any of the names below (DEFAULTS), the rest take the stack's defaults, so a package with
only `flows.py` deploys. The agent reads the same declarations, from its own image.
"""

import ast
import hashlib
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from stack.settings import StackSettings

ROOT = Path(__file__).resolve().parents[1]
# Where the project image keeps this checkout (the Dockerfile's WORKDIR).
APP_IN_IMAGE = "/app"
# What every flow's version hashes besides its own package and the shared code it imports.
PINS = ("requirements.txt", "flows/__init__.py")
# Docker's own forms: bytes, or a whole number with b, k, m or g; at least 6 MiB.
MEMORY = re.compile(r"^([0-9]+)([bkmg]?)$")
MEMORY_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CatalogError(ValueError):
    """A flow package, or what it declares, is not one the stack can deploy."""


@dataclass(frozen=True)
class Deployment:
    """What a package's deployment.py declares, with the stack's defaults filled in."""

    project: str  # PROJECT: the Prefect project (PREFECT_PROJECT)
    labels: Tuple[str, ...]  # LABELS: agents with these labels run it (AGENT_LABEL)
    max_running: int  # MAX_RUNNING: runs at once, later ones wait Scheduled (0: no limit)
    memory_limit: str  # MEMORY_LIMIT: per container, Docker's form: 512m, 2g (FLOW_MEMORY_LIMIT)
    cpu_limit: float  # CPU_LIMIT: CPUs per container, 0 no limit (FLOW_CPU_LIMIT)
    secrets: Tuple[str, ...]  # SECRETS: names in FLOW_SECRETS_FILE this flow reads (PrefectSecret)
    alerts: bool  # ALERTS: its failures alerted (RunFailed), its other ends posted (NOTIFY_ON=all)
    env: Tuple[str, ...]  # ENV: the agent's variables handed to its containers

    @property
    def memory_bytes(self) -> int:
        digits, unit = MEMORY.match(self.memory_limit).groups()
        return int(digits) * MEMORY_UNITS[unit]


def defaults(settings: StackSettings) -> dict:
    return {
        "PROJECT": settings.project,
        "LABELS": (settings.agent_label,),
        "MAX_RUNNING": 0,
        "MEMORY_LIMIT": settings.flow_memory_limit,
        "CPU_LIMIT": settings.flow_cpu_limit,
        "SECRETS": (),
        "ALERTS": True,
        "ENV": (),
    }


@dataclass(frozen=True)
class FlowPackage:
    name: str
    root: Path = ROOT

    @property
    def folder(self) -> Path:
        return self.root / "flows" / self.name

    @property
    def script_in_image(self) -> str:
        """The flow's script in the project image, which Docker storage loads at run time."""
        return f"{APP_IN_IMAGE}/flows/{self.name}/flows.py"

    def _module(self, name: str):
        try:
            return importlib.import_module(f"flows.{self.name}.{name}")
        except ValueError:  # a bad setting, already said in one line (SettingsError)
            raise
        except Exception as exc:  # a typo, a package not in requirements.txt, ...
            raise CatalogError(
                f"flows/{self.name}/{name}.py cannot be imported: {type(exc).__name__}: {exc}"
            ) from None

    def load_flow(self):
        import prefect

        flow = getattr(self._module("flows"), "flow", None)
        if not isinstance(flow, prefect.Flow):
            raise CatalogError(
                f"flows/{self.name}/flows.py defines no module-level `flow` "
                f"(a prefect.Flow): every package under flows/ with a flows.py is deployed"
            )
        return flow

    def load_schedule(self):
        if not (self.folder / "schedules.py").is_file():
            return None
        return getattr(self._module("schedules"), "schedule", None)

    def deployment(self, settings: StackSettings) -> Deployment:
        declared, own = defaults(settings), set()
        if (self.folder / "deployment.py").is_file():
            module = self._module("deployment")
            own = {name for name in declared if hasattr(module, name)}
            declared.update({name: getattr(module, name) for name in own})
        return checked(f"flows/{self.name}/deployment.py", declared, own)

    def check_settings(self) -> None:
        """The package's own check of its settings (deployment.py `check_settings`), if any."""
        if (self.folder / "deployment.py").is_file():
            getattr(self._module("deployment"), "check_settings", lambda: None)()

    def version(self) -> str:
        """A hash of the package, the shared flow code it imports and the pins: the flow
        image's tag, and so its version. Other flows, the agent, register.py and the
        stack's settings are not part of it."""
        digest = hashlib.sha256()
        for path in sorted(self._code()) + [self.root / pin for pin in PINS]:
            digest.update(path.relative_to(self.root).as_posix().encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:12]

    def _code(self) -> set:
        files = {
            path for path in self.folder.rglob("*") if path.is_file() and "__pycache__" not in path.parts
        }
        pending = [path for path in files if path.suffix == ".py"]
        while pending:  # the modules of other packages under flows/ it imports, transitively
            for module in imported_flow_modules(pending.pop()):
                path = self._source_of(module)
                if path and path not in files:
                    files.add(path)
                    pending.append(path)
        return files

    def _source_of(self, module: str) -> Optional[Path]:
        base = self.root.joinpath(*module.split("."))
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path
        return None


def imported_flow_modules(path: Path) -> set:
    """The `flows.*` modules a file imports (and their parent packages)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == "flows":
            found.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    return found


def packages(root: Path = ROOT, only: str = "") -> list:
    """Every flow package, by folder name; `only` one of them."""
    found = [FlowPackage(path.parent.name, root) for path in sorted((root / "flows").glob("*/flows.py"))]
    if only:
        found = [package for package in found if package.name == only]
        if not found:
            names = ", ".join(package.name for package in packages(root))
            raise CatalogError(
                f"FLOW={only!r} is not a flow package: use one of {names} (folders under flows/)"
            )
    return found


# Where a default comes from, for the one line about a bad one.
DEFAULT_SOURCES = {
    "MEMORY_LIMIT": "FLOW_MEMORY_LIMIT",
    "CPU_LIMIT": "FLOW_CPU_LIMIT",
    "PROJECT": "PREFECT_PROJECT",
}


def checked(where: str, declared: dict, own=()) -> Deployment:
    """The declarations as a Deployment, or one line naming the bad one (in the package's
    `where`, or the stack's setting it defaults to) and what is allowed."""

    def bad(name, allowed):
        source = f"{where}: {name}" if name in own else DEFAULT_SOURCES.get(name, name)
        return CatalogError(f"{source}={declared[name]!r} is not allowed: use {allowed}")

    for name in ("LABELS", "SECRETS", "ENV"):
        value = declared[name]
        if isinstance(value, str) or not all(isinstance(item, str) and item for item in value):
            raise bad(name, "a list of names")
    if not isinstance(declared["PROJECT"], str) or not declared["PROJECT"].strip():
        raise bad("PROJECT", "a project name")
    max_running = declared["MAX_RUNNING"]
    if isinstance(max_running, bool) or not isinstance(max_running, int) or max_running < 0:
        raise bad("MAX_RUNNING", "a whole number, 0 for no limit")
    memory = str(declared["MEMORY_LIMIT"]).strip().lower()
    match = MEMORY.match(memory)
    if not match or int(match.group(1)) * MEMORY_UNITS[match.group(2)] < 6 * 2**20:
        raise bad("MEMORY_LIMIT", "Docker's form of at least 6 MiB, such as 512m or 2g")
    cpu = declared["CPU_LIMIT"]
    if isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or cpu < 0:
        raise bad("CPU_LIMIT", "a number of CPUs, 0 for no limit")
    for name in declared["SECRETS"]:
        if not SECRET_NAME.match(name):
            raise CatalogError(
                f"{where}: the secret name {name!r} is not allowed: use letters, "
                f"digits and _, not starting with a digit"
            )
    if not isinstance(declared["ALERTS"], bool):
        raise bad("ALERTS", "True or False")
    return Deployment(
        project=declared["PROJECT"].strip(),
        labels=tuple(declared["LABELS"]),
        max_running=max_running,
        memory_limit=memory,
        cpu_limit=float(cpu),
        secrets=tuple(declared["SECRETS"]),
        alerts=declared["ALERTS"],
        env=tuple(declared["ENV"]),
    )
