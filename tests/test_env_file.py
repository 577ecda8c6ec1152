"""`make up`'s first step writes `.env` from `.env.example`: a fresh secret, never on a
command line (another user's `ps` shows every process's arguments)."""

import os
import re
import shutil
import stat
import subprocess

from tests.support import ROOT


def test_env_is_written_private_with_a_fresh_secret_kept_off_command_lines(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("Makefile", ".env.example"):
        shutil.copy(ROOT / name, checkout / name)
    # Every awk the Makefile runs writes its arguments down first.
    spy, argv_log = tmp_path / "bin", tmp_path / "awk-argv"
    spy.mkdir()
    (spy / "awk").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" >> {argv_log}\nexec {shutil.which("awk")} "$@"\n'
    )
    (spy / "awk").chmod(0o755)

    result = subprocess.run(
        ["make", "--no-print-directory", ".env"],
        cwd=checkout,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{spy}:{os.environ['PATH']}"},
    )

    assert result.returncode == 0, result.stderr
    env = (checkout / ".env").read_text()
    secret = re.search(r"^POSTGRES_PASSWORD=(\w+)$", env, re.M)[1]
    assert len(secret) == 48 and stat.S_IMODE((checkout / ".env").stat().st_mode) == 0o600
    assert re.search(rf"^HOST_REPORTS_DIR={re.escape(str(checkout / 'reports'))}$", env, re.M)
    assert argv_log.read_text() and secret not in argv_log.read_text()
