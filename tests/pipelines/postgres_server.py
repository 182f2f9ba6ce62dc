"""A throwaway PostgreSQL cluster for the tests that need one (Debian's ``postgresql`` package,
installed by .ci/run): ``initdb`` in a fresh folder, started with ``pg_ctl`` on a free loopback
port, removed after. PostgreSQL refuses to run as root, so as root (CI, this workplace) the
cluster is created and run as the package's ``postgres`` user; anyone else runs it as
themselves."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_ENV = "HETEROSCALE_REQUIRE_POSTGRES"
SUPERUSER = "heteroscale"


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str


def postgres_bin() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's versioned folder; skips
    the test when there is none (fails under ``HETEROSCALE_REQUIRE_POSTGRES``)."""
    if initdb := shutil.which("initdb"):
        return Path(initdb).resolve().parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if debian:
        return Path(debian[-1]).parent
    message = "no PostgreSQL server binaries (Debian: apt-get install postgresql)"
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_postgres() -> Iterator[Server]:
    """A started cluster whose superuser ``heteroscale`` connects over TCP without a password."""
    binaries = postgres_bin()
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    # Outside pytest's per-user temporary folder, which the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="heteroscale-pg-"))
    data = root / "data"
    if owner:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    as_owner = {"user": owner.pw_uid, "group": owner.pw_gid} if owner else {}
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, **as_owner)
        assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}{done.stderr}"

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            f"{root}/log",
            "-w",
            "start",
        )
        try:
            yield Server("127.0.0.1", port, SUPERUSER)
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
