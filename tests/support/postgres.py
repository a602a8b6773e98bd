"""A throwaway PostgreSQL server for the tests: Debian's binaries, a cluster in a temporary
folder on a free port, gone when the session ends.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to
the `postgres` user (`runuser`). Without the binaries (`apt-get install postgresql`; CI's
`.ci/run` installs them) or the psycopg driver (`pip install '.[postgres]'`) the tests
that need it are skipped and say why.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from tests.support.processes import free_port

OWNER = "postgres"  # who runs the server when the tests run as root


def missing() -> str | None:
    """Why no PostgreSQL server can be started here (None: one can)."""
    if importlib.util.find_spec("psycopg") is None:
        return "the psycopg driver is not installed (pip install '.[postgres]')"
    if not _bin_dir():
        return "PostgreSQL's server is not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as another user"
    return None


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """A fresh cluster; yields its SQLAlchemy URL (database `postgres`, trust auth)."""
    bin_dir = _bin_dir()
    with tempfile.TemporaryDirectory(prefix="bot-pg-") as folder:
        data, port = Path(folder) / "data", free_port()
        if os.geteuid() == 0:
            shutil.chown(folder, OWNER)
        _as_owner([f"{bin_dir}/initdb", "-D", str(data), "-U", "postgres", "-A", "trust"])
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = [f"{bin_dir}/pg_ctl", "-D", str(data), "-o", options, "-w", "-s"]
        _as_owner([*start, "-l", f"{folder}/log", "start"])
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            _as_owner([f"{bin_dir}/pg_ctl", "-D", str(data), "-m", "immediate", "-s", "stop"])


def wipe(url: str) -> None:
    """Drop every table, so a test starts from an empty database as on SQLite."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        engine.dispose()


def _bin_dir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return str(Path(found[-1]).parent) if found else ""


def _as_owner(command: list[str]) -> None:
    if os.geteuid() == 0:
        command = ["runuser", "-u", OWNER, "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
