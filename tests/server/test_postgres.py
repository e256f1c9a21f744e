"""Choosing the backend from `--db`, and what the PostgreSQL backend does differently from SQLite: a refusal of a
newer schema, no clearing of other processes' claims at start (the migrations of both backends:
test_migrations.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from tally_server import create_app, start_server
from tally_server.storage.backends import UnsupportedDatabaseError, open_repository
from tally_server.storage.migrate import SchemaTooNewError, revisions
from tally_server.storage.store import SqlRepository, open_postgres

from .postgres_cluster import PostgresCluster
from .processes import KEY


def _serve(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    environment.update(TALLY_CONFIG_DIR=str(tmp_path / "config"), **env)
    return subprocess.run(
        [sys.executable, "-m", "tally_server", "--port", "0", *args],
        env=environment, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.parametrize("db", ["mysql://tally@host/tally", "sqlite:///tmp/x.db", "https://example.com/db"])
def test_a_url_of_another_scheme_is_refused_with_one_line(db: str, tmp_path: Path) -> None:
    result = _serve(["--db", db], tmp_path)
    assert result.returncode == 2
    scheme = db.split("://")[0]
    assert f"unsupported database URL scheme '{scheme}'" in result.stderr
    assert "postgresql://user@host/dbname" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / f"{scheme}:").exists(), "no SQLite file was made of the URL"
    with pytest.raises(UnsupportedDatabaseError, match=scheme):
        create_app(db=db)


def test_the_database_url_variable_selects_postgresql_and_hides_the_password(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.create_database("env").replace("tally@", "tally:hunter2@")  # trust auth ignores it
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    environment.update(
        TALLY_CONFIG_DIR=str(tmp_path / "config"),
        TALLY_SERVER_DATABASE_URL=url,
        TALLY_SERVER_BOOTSTRAP_KEY=KEY,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tally_server", "--port", "0"],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "(data: postgresql://tally:***@/env_" in banner, (banner, err)
    assert "hunter2" not in banner + err
    with psycopg.connect(url) as conn:  # the server made its schema there
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (len(revisions()),)


def test_file_paths_and_memory_keep_sqlite(tmp_path: Path) -> None:
    for db in (str(tmp_path / "a.sqlite3"), ":memory:", None, tmp_path / "b.sqlite3"):
        repo = open_repository(db)
        try:
            assert isinstance(repo, SqlRepository)
            assert repo.db.dialect == "sqlite"
        finally:
            repo.close()


def test_a_newer_schema_is_refused(postgres: PostgresCluster) -> None:
    url = postgres.create_database("newer")
    open_postgres(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version(version) VALUES (%s)", (len(revisions()) + 1,))
    with pytest.raises(SchemaTooNewError, match="this server knows up to"):
        open_postgres(url)


def test_a_start_leaves_other_processes_running_claims(postgres: PostgresCluster) -> None:
    url = postgres.create_database("claims")
    with start_server(db=url, bootstrap_key=KEY):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO idempotency_keys(org, key, fingerprint, state, created_us) "
                "VALUES (1, 'in-flight', 'f', 'running', 1)"
            )
        with start_server(db=url, bootstrap_key=KEY):
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute("SELECT state FROM idempotency_keys WHERE key = 'in-flight'").fetchone()
            assert row == ("running",)


def test_nul_in_text_is_a_400_on_write_and_on_read(postgres: PostgresCluster) -> None:
    """PostgreSQL's text cannot hold NUL: a write or a filter naming one is bad input, not a 500 (the contract
    refuses NUL on both backends; tests/server/test_untrusted_input.py covers every operation)."""
    with (
        start_server(db=postgres.create_database("nul"), bootstrap_key=KEY) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as c,
    ):
        created = c.post("/v1/folders", json={"name": "nul", "description": "a\x00b"})
        assert created.status_code == 400, created.text
        assert created.json()["error"]["code"] == "invalid_request"
        assert "NUL" in created.json()["error"]["message"]
        listed = c.get("/v1/experiments", params={"name_prefix": "a\x00"})
        assert listed.status_code == 400, listed.text
        assert listed.json()["error"]["details"]["errors"][0]["path"] == "name_prefix"


def test_the_older_variable_still_names_a_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "old-variable.sqlite3"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    environment.update(
        TALLY_CONFIG_DIR=str(tmp_path / "config"), TALLY_SERVER_DB=str(db), TALLY_SERVER_BOOTSTRAP_KEY=KEY
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tally_server", "--port", "0"],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert f"(data: {db})" in banner
    assert db.exists()
