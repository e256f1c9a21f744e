"""The release before Alembic, from this repository's own history: its code, run as it shipped, makes the
databases that tests/server/test_migrations.py upgrades.

`LEGACY_COMMIT` is main as it was released with schema version 3 (two hand-kept SQL migration lists). Its files
are taken with `git archive` (nothing is checked out, the repository is not touched), so the tests need the
history that every clone has (a shallow clone does not: `git fetch --unshallow`).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

__all__ = ["LEGACY_COMMIT", "extract_legacy_tree", "legacy_migrations", "make_legacy_database"]

LEGACY_COMMIT = "4fbf1b82efac2f125a27a97d6ba339cc467bac2f"
_ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> bytes:
    result = subprocess.run(["git", "-C", str(_ROOT), *args], capture_output=True, check=False, timeout=60)
    if result.returncode != 0:
        pytest.fail(
            f"git {args[0]} of the release before Alembic ({LEGACY_COMMIT[:7]}) failed: "
            f"{result.stderr.decode(errors='replace').strip()}; the migration tests need the repository's history "
            "(in a shallow clone: git fetch --unshallow)"
        )
    return result.stdout


def extract_legacy_tree(into: Path) -> Path:
    """The legacy release's server and generated types (and the spec it loads) under `into`."""
    archive = _git("archive", LEGACY_COMMIT, "src/tally_server", "generated", "openapi")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def legacy_migrations() -> list[str]:
    """The legacy SQLite migration scripts, as shipped."""
    source = _git("show", f"{LEGACY_COMMIT}:src/tally_server/storage/migrations.py").decode()
    namespace: dict[str, Any] = {}
    exec(compile(source, "legacy migrations.py", "exec"), namespace)  # noqa: S102  # our own history's file
    scripts: list[str] = namespace["MIGRATIONS"]
    return scripts


def make_legacy_database(tree: Path, db: str) -> dict[str, Any]:
    """Run the legacy release's server on `db` (a file or a PostgreSQL URL) and fill it through its API
    (tests/server/legacy_data.py); what the script printed: ids, tokens and the legacy server's snapshot."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(tree / "generated")])
    env["TALLY_CONFIG_DIR"] = str(tree / "config")
    script = Path(__file__).with_name("legacy_data.py")
    result = subprocess.run(
        [sys.executable, str(script), "--db", db],
        env=env, cwd=tree, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    made: dict[str, Any] = json.loads(result.stdout)
    assert Path(made["tally_server"]).is_relative_to(tree), made["tally_server"]  # the legacy code ran
    return made
