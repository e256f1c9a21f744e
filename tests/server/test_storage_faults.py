"""The SQLite server under bad luck, as real processes meet it: its database file deleted or replaced while it runs
(503 `unavailable` naming the file, never a 200 into a file that is gone), and a full disk (507
`insufficient_storage`, which the SDK does not retry, never "busy")."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import tally
import tally.retries
from tally_server.errors import database_fault
from tally_server.storage.faults import DatabaseBusyError, DatabaseFullError, classify

from .processes import KEY, ServerProcess


def _ingest_body(start: int, count: int, pad: int = 0) -> dict[str, Any]:
    return {
        "events": [
            {
                "name": "train/loss",
                "value": i / 3,
                "step": i,
                "client_event_id": f"e{i}",
                **({"metadata": {"pad": "x" * pad}} if pad else {}),
            }
            for i in range(start, start + count)
        ]
    }


def _assert_names_the_file(response: httpx.Response, db: Path) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert str(db) in error["message"]
    assert error["details"] == {"database": str(db)}


def _replace_with_another_database(db: Path) -> None:
    other = db.with_name("other.sqlite3")
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE elsewhere (x)")
    conn.commit()
    conn.close()
    os.replace(other, db)


@pytest.mark.parametrize("mishap", ["deleted", "replaced"])
def test_a_database_file_gone_while_serving_is_unavailable_never_acknowledged(
    tmp_path: Path, mishap: str
) -> None:
    db = tmp_path / "data" / "tally.sqlite3"
    server = ServerProcess(db, tmp_path / "config").start()
    try:
        with server.client() as client:
            experiment = client.post("/v1/experiments", json={"name": "before"}).json()["id"]
            token = client.post(f"/v1/experiments/{experiment}/ingestion-keys", json={}).json()["token"]
            with server.client(token) as ingest:
                stored = ingest.post(f"/v1/experiments/{experiment}/metrics", json=_ingest_body(0, 50))
                assert stored.status_code == 200, stored.text

                if mishap == "deleted":
                    db.unlink()
                else:
                    _replace_with_another_database(db)

                _assert_names_the_file(
                    ingest.post(f"/v1/experiments/{experiment}/metrics", json=_ingest_body(50, 50)), db
                )
                answers = [
                    client.post("/v1/experiments", json={"name": "after"}),
                    client.post("/v1/folders", json={"name": "after"}, headers={"Idempotency-Key": "k1"}),
                    client.patch(f"/v1/experiments/{experiment}", json={"description": "after"}),
                    client.get("/v1/experiments"),
                    ingest.post(f"/v1/experiments/{experiment}/metrics", json=_ingest_body(100, 5)),
                    client.get("/v1/health"),
                ]
        for answer in answers:
            _assert_names_the_file(answer, db)
    finally:
        server.stop()
    log = server.log.read_text()
    assert "ERROR" in log, log[-3000:]
    assert str(db) in log, log[-3000:]


# ---- a full disk ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of this test's own (mounting needs root; without it the test is skipped and says why)."""
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a small tmpfs, and mounting one needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _fill(client: tally.Tally, experiment: str) -> tally.APIStatusError:
    """Ingest until the server refuses; the refusal."""
    for batch in range(200):
        try:
            client.metrics.ingest(experiment, _ingest_body(batch * 100, 100, pad=200)["events"])
        except tally.APIStatusError as exc:
            return exc
    raise AssertionError("1 MiB should have filled up")


def test_a_full_disk_is_insufficient_storage_and_the_sdk_does_not_retry_it(
    small_disk: Path, tmp_path: Path
) -> None:
    db = small_disk / "tally.sqlite3"
    ballast = small_disk / "ballast"  # freed at the end: the server must recover without a restart
    ballast.write_bytes(b"\0" * 64 * 1024)
    server = ServerProcess(db, tmp_path / "config").start()
    try:
        with tally.Tally(api_key=KEY, base_url=server.url) as client:
            experiment = client.experiments.create("fills-the-disk").id
            with tally.retries.testing() as waits:
                full = _fill(client, experiment)
            assert isinstance(full, tally.InsufficientStorageError), repr(full)
            assert full.status_code == 507
            assert full.code == "insufficient_storage"
            assert full.attempts == 1
            assert waits == []
            assert "hint:" in str(full)

        with server.client() as raw:
            experiment_body = {"name": "on-a-full-disk", "description": "x" * 4000}
            answer = raw.post("/v1/experiments", json=experiment_body)
            for _ in range(50):  # the metadata of an experiment is small: fill what is left
                if answer.status_code == 507:
                    break
                answer = raw.post("/v1/experiments", json=experiment_body)
            assert answer.status_code == 507, answer.text
            assert "retry-after" not in answer.headers
            error = answer.json()["error"]
            assert error["code"] == "insufficient_storage"
            assert error["request_id"] == answer.headers["X-Request-Id"]

            ballast.unlink()
            again = raw.post("/v1/folders", json={"name": "after-space-was-freed"})
            assert again.status_code == 201, again.text
    finally:
        server.stop()
    errors = [line for line in server.log.read_text().splitlines() if " ERROR " in line]
    assert any(str(db) in line and "No space" in line for line in errors), errors


# ---- which driver errors are which fault ---------------------------------------------------------------------
def test_only_a_locked_database_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    holder, waiter = sqlite3.connect(path, timeout=0), sqlite3.connect(path, timeout=0)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError) as locked:
            waiter.execute("SELECT * FROM sqlite_master")
    finally:
        holder.close()
        waiter.close()
    assert isinstance(classify(locked.value, str(path)), DatabaseBusyError)
    assert database_fault(DatabaseBusyError("locked")).headers == {"Retry-After": "1"}

    (tmp_path / "garbage.sqlite3").write_bytes(b"not a database, but long enough to be read as one" * 100)
    with pytest.raises(sqlite3.DatabaseError) as corrupt:
        sqlite3.connect(tmp_path / "garbage.sqlite3").execute("SELECT * FROM sqlite_master")
    assert classify(corrupt.value) is None  # a 500 that says so, not a "busy" retried for ever
    assert classify(sqlite3.OperationalError("no such table: x")) is None


def test_no_space_is_full_from_either_database() -> None:
    assert isinstance(classify(OSError(errno.ENOSPC, "No space left on device")), DatabaseFullError)
    psycopg = pytest.importorskip("psycopg")
    disk_full = psycopg.errors.lookup("53100")("could not extend file: No space left on device")
    assert isinstance(classify(disk_full, "PostgreSQL database 'tally'"), DatabaseFullError)
    assert isinstance(classify(psycopg.OperationalError("connection lost")), DatabaseBusyError)
    answer = database_fault(DatabaseFullError("full", "PostgreSQL database 'tally'"))
    assert (answer.status, answer.code, answer.headers) == (507, "insufficient_storage", {})
