"""Which images `make e2e` runs, and the local ones it makes where the real ones cannot be
pulled. The local base image the project image is built on: a Debian bullseye rootfs (Python 3.9, as the official python:3.9-slim) from
debootstrap, the requirements installed into a venv in it from wheels downloaded on the
host (containers cannot reach a package index here), then `docker import`. Made once and
cached by the requirements' hash. Making it needs root (debootstrap, chroot).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tests.support import ROOT

VENV_PATH = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the image needs besides the requirements (the stand-in's are the door's too): the
# ones required only on the image's older Python, which pip on this host's newer one skips
# (typing-extensions: graphql-core, starlette, anyio; exceptiongroup: anyio, below 3.11).
STANDIN_REQUIREMENTS = ["typing-extensions>=4,<5", "exceptiongroup>=1.0.2,<2", "wheel"]


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    return subprocess.run([str(arg) for arg in args], **kwargs)


def ensure_command(command: str, package: str) -> None:
    """Installs a Debian package as root where its command is missing; otherwise says what
    to install."""
    if shutil.which(command):
        return
    if os.geteuid() != 0:
        raise SystemExit(
            f"e2e: {command} is missing: run make e2e as root, or install it "
            f"(apt-get install {package}) and retry"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", package, env=env, stdout=subprocess.DEVNULL)


def cached(tag: str) -> bool:
    if run("docker", "image", "inspect", tag, check=False, capture_output=True).returncode == 0:
        print(f"   {tag} is cached")
        return True
    return False


def debootstrap(rootfs: Path, packages: str, suite: str = "bullseye") -> None:
    ensure_command("debootstrap", "debootstrap")
    if os.geteuid() != 0:
        raise SystemExit("e2e: making a local image needs root (debootstrap, chroot)")
    run("debootstrap", "--variant=minbase", f"--include={packages}", suite, rootfs, stdout=subprocess.DEVNULL)


def import_image(rootfs: Path, tag: str, *changes: str) -> None:
    shutil.rmtree(rootfs / "var" / "cache" / "apt", ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    run(
        "docker",
        "import",
        *[arg for change in changes for arg in ("--change", change)],
        "-",
        tag,
        stdin=tar.stdout,
        stdout=subprocess.DEVNULL,
    )
    tar.wait()
    print(f"   made {tag}")


def base_image() -> str:
    """The local base image's tag; makes it when it is not there yet."""
    recipe = (ROOT / "requirements.txt").read_bytes() + "\n".join(STANDIN_REQUIREMENTS).encode()
    tag = f"users-report-base:py39-{hashlib.sha256(recipe).hexdigest()[:12]}"
    if cached(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="e2e-base-") as work:
        rootfs, wheels = Path(work) / "rootfs", Path(work) / "rootfs" / "tmp" / "wheels"
        debootstrap(rootfs, "python3,python3-venv,ca-certificates")
        shutil.copy(ROOT / "requirements.txt", rootfs / "tmp" / "requirements.txt")
        run(
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--python-version",
            "3.9",
            "--implementation",
            "cp",
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--dest",
            wheels,
            "-r",
            ROOT / "requirements.txt",
            *STANDIN_REQUIREMENTS,
        )
        quoted = " ".join(f"'{requirement}'" for requirement in STANDIN_REQUIREMENTS)
        run(
            "chroot",
            rootfs,
            "/usr/bin/env",
            "-i",
            "PATH=/usr/bin:/bin",
            "/bin/sh",
            "-c",
            "python3 -m venv /opt/venv && /opt/venv/bin/pip install --quiet --no-index "
            f"--find-links /tmp/wheels -r /tmp/requirements.txt {quoted}",
        )
        shutil.rmtree(wheels)
        import_image(
            rootfs,
            tag,
            f"ENV PATH={VENV_PATH}",
            "ENV LANG=C.UTF-8",
            # No container reaches a package index here: pip settles for what is
            # installed (Prefect's Docker storage runs `pip install pip --upgrade`).
            "ENV PIP_NO_INDEX=1",
            'CMD ["python3"]',
        )
    return tag


def postgres_image(suite: str) -> str:
    """A stand-in for the official postgres image: Debian's PostgreSQL of `suite` (bullseye's
    13, bookworm's 15) started by postgres/docker-entrypoint.sh as the official image
    starts, same variables, data path and PATH (its tools as commands)."""
    entrypoint = Path(__file__).parent / "postgres" / "docker-entrypoint.sh"
    major = {"bullseye": 13, "bookworm": 15}[suite]
    changes = (
        "ENV LANG=C.UTF-8",
        "ENV PGDATA=/var/lib/postgresql/data",
        f"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/{major}/bin",
        'ENTRYPOINT ["docker-entrypoint.sh"]',
        'CMD ["postgres"]',
    )
    recipe = entrypoint.read_bytes() + "\n".join(changes).encode()
    tag = f"users-report-postgres:{major}-{hashlib.sha256(recipe).hexdigest()[:12]}"
    if cached(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="e2e-postgres-") as work:
        rootfs = Path(work) / "rootfs"
        debootstrap(rootfs, "postgresql", suite=suite)
        # Debian's own cluster, made by the package; the entrypoint makes the stack's.
        shutil.rmtree(rootfs / "var" / "lib" / "postgresql" / str(major))
        shutil.rmtree(rootfs / "etc" / "postgresql" / str(major))
        shutil.copy(entrypoint, rootfs / "usr" / "local" / "bin" / "docker-entrypoint.sh")
        import_image(rootfs, tag, *changes)
    return tag


def bookworm_image(name: str, packages: str, *changes: str, links=()) -> str:
    """A local image of Debian bookworm's `packages`, tagged by them; `links`: (path, target)
    symlinks made in it, `changes`: its Dockerfile lines. Made when it is not there yet."""
    tag = f"users-report-{name}:bookworm-{hashlib.sha256(packages.encode()).hexdigest()[:12]}"
    if cached(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix=f"e2e-{name}-") as work:
        rootfs = Path(work) / "rootfs"
        debootstrap(rootfs, packages, suite="bookworm")
        for path, target in links:
            (rootfs / path).symlink_to(target)
        import_image(rootfs, tag, *changes)
    return tag


def proxy_image() -> str:
    """A stand-in for the official caddy:2 image: Debian's caddy package (bookworm's, the
    first release with it), with the official image's data and config paths, and wget for
    the health probe as the official image's busybox has it."""
    return bookworm_image(
        "caddy",
        "caddy,wget,ca-certificates",
        "ENV XDG_CONFIG_HOME=/config",
        "ENV XDG_DATA_HOME=/data",
        'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]',
    )


def monitoring_image() -> str:
    """A stand-in for the official prom/prometheus and prom/alertmanager images, one for both:
    Debian bookworm's packages (Prometheus 2.42, Alertmanager 0.25, the official images'
    versions), their programs where the official images have them (/bin/prometheus,
    /bin/alertmanager), and wget for the health probes as the official images' busybox."""
    return bookworm_image(
        "monitoring",
        "prometheus,prometheus-alertmanager,wget",
        'ENTRYPOINT ["/bin/prometheus"]',
        links=[("usr/bin/alertmanager", "prometheus-alertmanager")],
    )


def upstream_images() -> list:
    """What the stack pulls: every image its compose files name (their defaults), with its
    own database, and the project image's base, the Dockerfile's."""
    import re

    services = [
        service
        for name in ("docker-compose.yml", "docker-compose.database.yml")
        for service in yaml.safe_load((ROOT / name).read_text())["services"].values()
    ]
    named = {
        re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", service["image"]) for service in services if "image" in service
    }
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)[1]
    return sorted({image for image in named if not image.startswith("users-report")} | {base})


def choose_images() -> str:
    """`upstream` (the stack's real images) where every one of them can be pulled, else
    `local` (the placeholders and local images of docker-compose.placeholders.yml);
    E2E_IMAGES chooses instead."""
    wanted = os.environ.get("E2E_IMAGES", "")
    if wanted not in ("", "upstream", "local"):
        raise SystemExit(
            f"e2e: E2E_IMAGES={wanted!r} is not allowed: use upstream or local (or leave it empty)"
        )
    if wanted == "local":
        return "local (E2E_IMAGES=local)"
    for image in upstream_images():
        pulled = run("docker", "pull", "-q", image, check=False, capture_output=True, text=True, timeout=900)
        if pulled.returncode != 0:
            if wanted == "upstream":
                raise SystemExit(
                    f"e2e: E2E_IMAGES=upstream, but {image} cannot be pulled: {pulled.stderr.strip()[-300:]}"
                )
            return f"local ({image} cannot be pulled)"
    return "upstream"


def stack_images() -> tuple:
    """(what was chosen, and why; the local images for the placeholders, none upstream)."""
    chosen = choose_images()
    if chosen.startswith("upstream"):
        return chosen, {}
    return chosen, {
        "BASE_IMAGE": base_image(),
        # The default's major version (15), and an older one for make upgrade-db to move.
        "E2E_POSTGRES_IMAGE": postgres_image("bookworm"),
        "E2E_POSTGRES_OLD_IMAGE": postgres_image("bullseye"),
        "PROXY_IMAGE": proxy_image(),
        "PROMETHEUS_IMAGE": monitoring_image(),
        "ALERTMANAGER_IMAGE": monitoring_image(),
    }
