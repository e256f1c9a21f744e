"""A throwaway PostgreSQL server for the test session (and `make bench`): `initdb` into a temporary directory,
`pg_ctl start` on a free port with its unix socket in that directory (it listens on no TCP interface), stopped
and deleted at the end.

PostgreSQL refuses to run as root; under root (a CI container) the cluster runs as the unprivileged user
`nobody`, owning the temporary directory. The binaries are found on PATH or under /usr/lib/postgresql/*/bin
(Debian's layout); `make test` installs them with apt-get when neither has them, so nothing is skipped.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tally_server.process import free_port

__all__ = ["PostgresCluster", "find_pg_bin"]

_USER = "tally"


def find_pg_bin() -> Path:
    """The directory holding initdb and pg_ctl."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise RuntimeError(
        "PostgreSQL's initdb was not found (on PATH or in /usr/lib/postgresql/*/bin): `make test` installs it "
        "with `apt-get install -y postgresql`; or install PostgreSQL 15 or later yourself"
    )


class PostgresCluster:
    """A PostgreSQL server in a temporary directory; `create_database()` gives a fresh database's URL.

    `fsync=False` (the tests: nothing here must outlive the session) turns PostgreSQL's fsync off; the
    benchmarks keep it on, as a real server has it."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.bin = find_pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="tally-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, user="nobody")
            self._as = ["runuser", "-u", "nobody", "--"]
        self._names = itertools.count(1)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            _USER,
            "--locale=C",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses='' -c max_connections=300"
        if not fsync:
            options += " -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        self.admin_url = self.url("postgres")

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as, str(self.bin / tool), *args], capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            log = self.dir / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr[-2000:]}{tail}")

    def url(self, dbname: str) -> str:
        return f"postgresql://{_USER}@/{dbname}?host={self.dir}&port={self.port}"

    def create_database(self, prefix: str = "tally") -> str:
        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]  # a name made here
        return self.url(name)

    def restart(self) -> None:
        """Stop it at once (`-m immediate`: every session is cut, as in a crash) and start it again with the same
        options; returns once it accepts connections."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-m", "immediate", "-w", "restart"
        )

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
