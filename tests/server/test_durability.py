"""Acknowledged means durable: every 2xx write is fsynced before its answer, survives the server being killed at
any moment, and an idempotent write's record commits with its effect (a crash between them cannot duplicate it)."""

from __future__ import annotations

import random
import shutil
import sqlite3
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest

from tally_server import create_app

from .processes import KEY, ServerProcess


def _ingestion_token(client: httpx.Client, name: str) -> tuple[str, str]:
    experiment = client.post("/v1/experiments", json={"name": name}).json()["id"]
    token = client.post(f"/v1/experiments/{experiment}/ingestion-keys", json={}).json()["token"]
    return experiment, token


def test_every_connection_of_a_file_database_fsyncs_its_commits(tmp_path: Path) -> None:
    app = create_app(db=tmp_path / "durable.sqlite3", bootstrap_key=KEY)
    db = app.state.repo.db
    try:
        with db.write() as writer, db._reader_engine.connect() as reader:
            for conn in (writer, reader):
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        app.state.repo.close()
    fast = create_app(db=tmp_path / "fast.sqlite3", bootstrap_key=KEY, fsync=False)
    try:
        with fast.state.repo.db.write() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL, asked for
    finally:
        fast.state.repo.close()


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to count the server's fsync calls")
def test_each_acknowledged_ingest_was_fsynced_before_its_answer(tmp_path: Path) -> None:
    trace = tmp_path / "fsyncs.txt"
    server = ServerProcess(tmp_path / "tally.sqlite3", tmp_path / "config")
    server.start(prefix=["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(trace)])
    try:
        with server.client() as client:
            experiment, token = _ingestion_token(client, "fsynced")
        with server.client(token) as ingest:
            before = trace.read_text().count("sync(")
            for i in range(20):
                body = {"events": [{"name": "loss", "value": 1.0, "step": i, "client_event_id": f"e{i}"}]}
                assert ingest.post(f"/v1/experiments/{experiment}/metrics", json=body).status_code == 200
            after = trace.read_text().count("sync(")
    finally:
        server.stop()
    assert after - before >= 20, f"{after - before} fsync calls for 20 acknowledged ingests"


def test_a_server_killed_at_random_moments_loses_no_acknowledged_event(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "tally.sqlite3", tmp_path / "config").start()
    with server.client() as client:
        experiment, token = _ingestion_token(client, "killed")
    acknowledged: set[str] = set()
    rng = random.Random(8)
    try:
        for round_ in range(4):
            stop = threading.Event()

            def send(round_: int = round_, stop: threading.Event = stop) -> None:
                with server.client(token) as ingest:
                    for batch in range(10_000):
                        if stop.is_set():
                            return
                        ids = [f"r{round_}-b{batch}-{i}" for i in range(200)]
                        body = {
                            "events": [
                                {"name": "loss", "value": 0.5, "step": 1, "client_event_id": cid}
                                for cid in ids
                            ]
                        }
                        try:
                            response = ingest.post(f"/v1/experiments/{experiment}/metrics", json=body)
                        except httpx.HTTPError:
                            return  # the server died under this request: not acknowledged
                        if response.status_code == 200:
                            acknowledged.update(ids)

            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(rng.uniform(0.2, 0.8))
            server.kill()
            stop.set()
            sender.join(60)
            server.start()
    finally:
        server.stop()
    assert len(acknowledged) > 1000, "the senders should have been acknowledged many batches"
    conn = sqlite3.connect(server.db)
    stored = {row[0] for row in conn.execute("SELECT client_event_id FROM metric_points")}
    conn.close()
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged events are gone"


def test_an_existing_database_file_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    app = create_app(db=db, bootstrap_key=KEY)
    app.state.repo.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


# The test's hook: the server process dies at the moment it records an idempotent answer, after the operation
# ran. The patch lives here, not in the server.
_DIE_WHEN_RECORDING = """
import os
from tally_server.storage.store import SqlRepository

def _die(self, *args, **kwargs):
    os._exit(137)

SqlRepository.idempotency_complete = _die
"""


def test_a_crash_between_an_effect_and_its_idempotency_record_leaves_one_resource(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "tally.sqlite3", tmp_path / "config").start(hook=_DIE_WHEN_RECORDING)
    headers = {"Idempotency-Key": "crash-between-effect-and-record"}
    body = {"name": "exactly-once"}
    try:
        with server.client() as client, pytest.raises(httpx.HTTPError):
            client.post("/v1/experiments", json=body, headers=headers)
        assert server.process is not None
        assert server.process.wait(30) == 137
        server.start()  # the same database, without the hook
        with server.client() as client:
            retry = client.post("/v1/experiments", json=body, headers=headers)
            assert retry.status_code == 201, retry.text
            again = client.post("/v1/experiments", json=body, headers=headers)
            assert again.headers.get("Idempotent-Replayed") == "true"
            assert again.json()["id"] == retry.json()["id"]
            named = client.get("/v1/experiments", params={"name_prefix": "exactly-once"}).json()["data"]
    finally:
        server.stop()
    assert [e["id"] for e in named] == [retry.json()["id"]]
