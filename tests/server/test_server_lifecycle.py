"""Storage (file, WAL, migrations, restart, permissions), bootstrap keys, rate limits, several servers at
once."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import httpx
import pytest

from tally_server import create_app, start_server
from tally_server.storage.migrate import revisions

from .helpers import assert_error, event, make_client
from .legacy_release import legacy_migrations

KEY = "tk_org_" + "R" * 32


def test_data_survives_a_restart_and_the_file_is_private(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "tally.sqlite3"
    with (
        start_server(db=db, bootstrap_key=KEY, validate_responses=True) as server,
        make_client(server, KEY) as c,
    ):
        experiment = c.post("/v1/experiments", json={"name": "persist"}).json()
        token = c.post(f"/v1/experiments/{experiment['id']}/ingestion-keys", json={}).json()["token"]
        with make_client(server, token) as ingest:
            body = {"events": [event(str(i), step=i) for i in range(10)]}
            assert (
                ingest.post(f"/v1/experiments/{experiment['id']}/metrics", json=body).json()["accepted"] == 10
            )
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(revisions())
    assert conn.execute("SELECT count(*) FROM api_keys WHERE token_hash = ?", (KEY,)).fetchone()[0] == 0
    conn.close()
    # Restart without the bootstrap key: the data and the old key are still there; a fresh key is minted.
    with start_server(db=db) as server:
        assert server.api_key != KEY
        with make_client(server, KEY) as c:
            assert c.get(f"/v1/experiments/{experiment['id']}").json()["name"] == "persist"
            points = c.get(f"/v1/experiments/{experiment['id']}/metrics").json()["data"]
            assert len(points) == 10
        with make_client(server, server.api_key) as c:
            assert c.get("/v1/auth/status").json()["organization_name"] == "default"
        with make_client(server, token) as ingest:
            again = ingest.post(f"/v1/experiments/{experiment['id']}/metrics", json=body).json()
            assert again == {"accepted": 0, "duplicates": 10, "conflicts": []}


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.sqlite3"
    create_app(db=db).state.repo.close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version(version) VALUES (?)", (len(revisions()) + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="schema version"):
        create_app(db=db)


def test_bootstrap_keys_must_be_org_keys() -> None:
    with pytest.raises(ValueError, match="--bootstrap-key"):
        create_app(bootstrap_key="tk_ing_" + "x" * 32)
    with pytest.raises(ValueError, match="--bootstrap-key"):
        create_app(bootstrap_key="secret")


def test_a_new_bootstrap_key_on_an_existing_database_joins_the_default_org(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite3"
    other = "tk_org_" + "S" * 32
    with start_server(db=db, bootstrap_key=KEY) as server, make_client(server, KEY) as c:
        org = c.get("/v1/auth/status").json()["organization_id"]
    with start_server(db=db, bootstrap_key=other) as server, make_client(server, other) as c:
        assert c.get("/v1/auth/status").json()["organization_id"] == org


def test_rate_limit_answers_429_with_headers() -> None:
    with start_server(bootstrap_key=KEY, rate_limit=1, validate_responses=True) as server:
        with make_client(server, KEY) as c:
            responses = [c.get("/v1/folders") for _ in range(10)]
        limited = [r for r in responses if r.status_code == 429]
        assert limited, [r.status_code for r in responses]
        error = assert_error(limited[0], 429, "rate_limited")
        assert error["message"]
        headers = limited[0].headers
        assert int(headers["Retry-After"]) >= 1
        assert headers["X-RateLimit-Limit"] == "1"
        assert headers["X-RateLimit-Remaining"] == "0"
        assert int(headers["X-RateLimit-Reset"]) >= 0
        assert responses[0].status_code == 200
        with httpx.Client(base_url=server.url) as anon:  # health has no key, so no limit
            assert all(anon.get("/v1/health").status_code == 200 for _ in range(5))


def test_rate_limit_is_off_by_default(client: httpx.Client) -> None:
    assert all(client.get("/v1/auth/status").status_code == 200 for _ in range(30))


def test_several_servers_in_one_process() -> None:
    with start_server() as a, start_server() as b:
        assert a.url != b.url
        assert a.api_key != b.api_key
        with make_client(a, a.api_key) as ca, make_client(b, b.api_key) as cb:
            ca.post("/v1/folders", json={"name": "only-in-a"})
            assert cb.get("/v1/folders").json()["data"] == []
            assert_error(
                cb.get("/v1/auth/status", headers={"Authorization": f"Bearer {a.api_key}"}),
                401,
                "unauthenticated",
            )
    assert "tk_" not in repr(a)


def test_a_database_of_contract_1_1_is_migrated_with_no_tags_and_nothing_archived(tmp_path: Path) -> None:
    """Revision 0003 (tags, archiving) on a file at legacy schema version 2 (the scripts of the release before
    Alembic): its experiments and folders read back with `tags: []` and `archived_at: null`, and the tag index
    works for them from then on."""
    db = tmp_path / "v2.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, script in enumerate(legacy_migrations()[:2], start=1):
        conn.executescript(script)
        conn.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))
    conn.execute("INSERT INTO organizations(id, name, created_at) VALUES ('org_1', 'default', 'now')")
    conn.execute(
        "INSERT INTO folders(id, org, parent, name, description, metadata, created_at, updated_at) "
        "VALUES ('fld_old', 1, NULL, 'old', NULL, '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
    )
    conn.execute(
        "INSERT INTO experiments(id, org, folder, name, description, metadata, status, created_us, created_at, "
        "updated_at, ended_at) VALUES ('exp_old', 1, 1, 'old', NULL, '{}', 'running', 0, "
        "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', NULL)"
    )
    conn.commit()
    conn.close()
    with (
        start_server(db=db, bootstrap_key=KEY, validate_responses=True) as server,
        make_client(server, KEY) as c,
    ):
        experiment = c.get("/v1/experiments/exp_old").json()
        assert (experiment["tags"], experiment["archived_at"]) == ([], None)
        assert c.get("/v1/folders/fld_old").json()["archived_at"] is None
        assert [e["id"] for e in c.get("/v1/experiments").json()["data"]] == ["exp_old"]
        c.patch("/v1/experiments/exp_old", json={"tags": ["late"]})
        assert [e["id"] for e in c.get("/v1/experiments", params={"tag": "late"}).json()["data"]] == [
            "exp_old"
        ]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(revisions())
    conn.close()
