"""Artifacts on the live server, both backends: streamed uploads checked by sha256, content-addressed files,
byte-range downloads, idempotent retries, deletes that remove a content once nothing uses it, and uploads cut short
or refused that leave no file behind."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tally_server import HttpLimits, RunningServer, start_server
from tally_server.contents import ContentStore

from .helpers import assert_error, make_client

OCTET = {"Content-Type": "application/octet-stream"}


def upload(
    client: httpx.Client, experiment_id: str, data: bytes, name: str = "model.bin", **headers: str
) -> httpx.Response:
    params = {"name": name, "sha256": hashlib.sha256(data).hexdigest()}
    return client.post(
        f"/v1/experiments/{experiment_id}/artifacts",
        params=params,
        content=data,
        headers={**OCTET, **headers},
    )


def stored_files(server: RunningServer) -> list[Path]:
    """Every content file, and every temporary file of an upload, in the server's artifact directory."""
    root = server.app.state.repo.contents.root
    return sorted(p for p in root.rglob("*") if p.is_file())


def content_files(server: RunningServer, sha256: str) -> list[Path]:
    return [p for p in stored_files(server) if p.name == sha256]


@pytest.fixture
def experiment(new_experiment: Callable[..., dict[str, Any]]) -> str:
    return str(new_experiment()["id"])


def test_upload_list_get_download_and_ranges(
    live_server: RunningServer, client: httpx.Client, experiment: str
) -> None:
    data = os.urandom(300_000)
    created = upload(client, experiment, data, name="checkpoints/epoch-1.pt")
    assert created.status_code == 201, created.text
    artifact = created.json()
    assert (artifact["name"], artifact["size_bytes"]) == ("checkpoints/epoch-1.pt", len(data))
    assert artifact["sha256"] == hashlib.sha256(data).hexdigest()
    assert content_files(live_server, artifact["sha256"])  # stored under its sha256

    base = f"/v1/experiments/{experiment}/artifacts"
    assert client.get(base).json() == {"data": [artifact], "next_cursor": None}
    assert client.get(f"{base}/{artifact['id']}").json() == artifact

    whole = client.get(f"{base}/{artifact['id']}/content")
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["ETag"] == f'"{artifact["sha256"]}"'
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert "content-encoding" not in whole.headers  # never gzipped, though httpx asks for it

    part = client.get(f"{base}/{artifact['id']}/content", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = client.get(f"{base}/{artifact['id']}/content", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == data[-10:]
    past = client.get(f"{base}/{artifact['id']}/content", headers={"Range": f"bytes={len(data)}-"})
    assert_error(past, 416, "range_not_satisfiable")
    assert past.headers["Content-Range"] == f"bytes */{len(data)}"
    cached = client.get(f"{base}/{artifact['id']}/content", headers={"If-None-Match": whole.headers["ETag"]})
    assert cached.status_code == 304
    assert cached.content == b""


def test_a_retried_upload_stores_one_artifact(
    live_server: RunningServer, client: httpx.Client, experiment: str
) -> None:
    data = b"checkpoint" * 1000
    first = upload(client, experiment, data, **{"Idempotency-Key": "upload-once"})
    again = upload(client, experiment, data, **{"Idempotency-Key": "upload-once"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(client.get(f"/v1/experiments/{experiment}/artifacts").json()["data"]) == 1


def test_a_checksum_mismatch_stores_nothing(
    live_server: RunningServer, client: httpx.Client, experiment: str
) -> None:
    data = b"what was sent"
    wrong = hashlib.sha256(b"what was hashed").hexdigest()
    response = client.post(
        f"/v1/experiments/{experiment}/artifacts",
        params={"name": "x", "sha256": wrong},
        content=data,
        headers=OCTET,
    )
    error = assert_error(response, 422, "checksum_mismatch")
    assert error["details"]["received"] == hashlib.sha256(data).hexdigest()
    assert client.get(f"/v1/experiments/{experiment}/artifacts").json()["data"] == []
    assert not content_files(live_server, hashlib.sha256(data).hexdigest())
    assert not [p for p in stored_files(live_server) if p.suffix == ".part"]


def test_an_upload_needs_the_octet_stream_type(client: httpx.Client, experiment: str) -> None:
    response = client.post(
        f"/v1/experiments/{experiment}/artifacts",
        params={"name": "x", "sha256": hashlib.sha256(b"{}").hexdigest()},
        content=b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 415, "unsupported_media_type")


def test_same_content_is_one_file_removed_with_its_last_artifact(
    live_server: RunningServer, client: httpx.Client, new_experiment: Callable[..., dict[str, Any]]
) -> None:
    data = os.urandom(5000)
    sha256 = hashlib.sha256(data).hexdigest()
    one, other = new_experiment()["id"], new_experiment()["id"]
    first = upload(client, one, data).json()
    second = upload(client, other, data).json()
    assert first["id"] != second["id"]
    assert len(content_files(live_server, sha256)) == 1

    assert client.delete(f"/v1/experiments/{one}/artifacts/{first['id']}").status_code == 204
    assert len(content_files(live_server, sha256)) == 1  # the other artifact still uses it
    assert client.get(f"/v1/experiments/{one}/artifacts/{first['id']}").status_code == 404
    assert client.get(f"/v1/experiments/{other}/artifacts/{second['id']}/content").content == data

    assert client.delete(f"/v1/experiments/{other}/artifacts/{second['id']}").status_code == 204
    assert content_files(live_server, sha256) == []
    assert_error(client.delete(f"/v1/experiments/{other}/artifacts/{second['id']}"), 404, "not_found")


def test_deleting_an_experiment_deletes_its_artifacts(
    live_server: RunningServer, client: httpx.Client, experiment: str
) -> None:
    data = os.urandom(4000)
    upload(client, experiment, data)
    assert content_files(live_server, hashlib.sha256(data).hexdigest())
    assert client.delete(f"/v1/experiments/{experiment}").status_code == 204
    assert content_files(live_server, hashlib.sha256(data).hexdigest()) == []


def test_artifacts_of_another_organisation_are_not_found(
    live_server: RunningServer, client: httpx.Client, experiment: str
) -> None:
    artifact = upload(client, experiment, b"mine").json()
    _, token = live_server.repository.create_organization("strangers")
    with make_client(live_server, token) as stranger:
        content = stranger.get(f"/v1/experiments/{experiment}/artifacts/{artifact['id']}/content")
        assert_error(content, 404, "not_found")
        assert_error(upload(stranger, experiment, b"theirs"), 404, "not_found")


@pytest.fixture
def capped_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A SQLite-backed server whose artifacts hold at most 64 KiB, with its directory in `tmp_path`."""
    with start_server(
        db=tmp_path / "capped.sqlite3", artifacts_dir=tmp_path / "artifacts", max_artifact_bytes=65_536
    ) as server:
        yield server


def test_over_the_cap_is_refused_early_and_while_streaming(capped_server: RunningServer) -> None:
    with make_client(capped_server, capped_server.api_key) as client:
        experiment = client.post("/v1/experiments", json={"name": "capped"}).json()["id"]
        too_big = b"x" * 70_000
        error = assert_error(upload(client, experiment, too_big), 413, "payload_too_large")
        assert error["details"] == {"max_bytes": 65_536}

        def chunks() -> Iterator[bytes]:  # no Content-Length: refused once the cap is passed
            for _ in range(70):
                yield b"y" * 1000

        streamed = client.post(
            f"/v1/experiments/{experiment}/artifacts",
            params={"name": "big", "sha256": hashlib.sha256(b"y" * 70_000).hexdigest()},
            content=chunks(),
            headers=OCTET,
        )
        assert_error(streamed, 413, "payload_too_large")
        assert client.get(f"/v1/experiments/{experiment}/artifacts").json()["data"] == []
        assert stored_files(capped_server) == []  # no content, no temporary file left behind


def test_an_upload_cut_halfway_leaves_no_file(capped_server: RunningServer) -> None:
    with make_client(capped_server, capped_server.api_key) as client:
        experiment = client.post("/v1/experiments", json={"name": "cut"}).json()["id"]
        data = os.urandom(60_000)
        url = urlsplit(capped_server.url)
        head = (
            f"POST /v1/experiments/{experiment}/artifacts?name=cut&sha256={hashlib.sha256(data).hexdigest()} "
            f"HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {capped_server.api_key}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(head + data[:30_000])
            time.sleep(0.3)  # the server has the first half on disk, in a temporary file
            assert [p.suffix for p in stored_files(capped_server)] == [".part"]
        deadline = time.monotonic() + 10
        while stored_files(capped_server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored_files(capped_server) == []  # the temporary file went with the request
        assert client.get(f"/v1/experiments/{experiment}/artifacts").json()["data"] == []


def test_temporary_files_of_dead_processes_are_removed_at_start(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    stale, fresh = incoming / "dead.part", incoming / "live.part"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    ContentStore(tmp_path)
    assert not stale.exists()
    assert fresh.exists()  # maybe another process's upload in flight: left alone


def test_a_long_upload_outlives_the_body_deadline_while_it_progresses(tmp_path: Path) -> None:
    """`--body-timeout` is absolute for JSON bodies, but idle for an upload larger than the JSON cap: an upload
    that keeps arriving may take longer than it; one that stops is still cut off."""
    limits = HttpLimits(body_timeout=0.5)
    with (
        start_server(
            db=tmp_path / "slow.sqlite3", artifacts_dir=tmp_path / "artifacts", http_limits=limits
        ) as s,
        make_client(s, s.api_key) as client,
    ):
        experiment = client.post("/v1/experiments", json={"name": "slow"}).json()["id"]
        piece = b"z" * (1024 * 1024)

        def slowly() -> Iterator[bytes]:  # 6 MiB over about 1.5 s: three body deadlines
            for _ in range(6):
                time.sleep(0.25)
                yield piece

        response = client.post(
            f"/v1/experiments/{experiment}/artifacts",
            params={"name": "slow.bin", "sha256": hashlib.sha256(piece * 6).hexdigest()},
            content=slowly(),
            headers={**OCTET, "Content-Length": str(6 * len(piece))},
        )
        assert response.status_code == 201, response.text
        assert response.json()["size_bytes"] == 6 * len(piece)


def test_an_upload_racing_the_delete_of_the_same_content_keeps_its_file(
    live_server: RunningServer, client: httpx.Client, experiment: str
) -> None:
    """A delete of the last artifact using a content and an upload of that content at once (two requests, two
    database transactions): whichever order the content's lock gives them, every artifact left has its file."""
    data = os.urandom(200_000)
    sha256 = hashlib.sha256(data).hexdigest()
    base = f"/v1/experiments/{experiment}/artifacts"
    with make_client(live_server, live_server.api_key) as other:
        for _ in range(8):
            first = upload(client, experiment, data).json()
            results: dict[str, int] = {}
            threads = [
                threading.Thread(
                    target=lambda doomed=first["id"], into=results: into.update(
                        delete=client.delete(f"{base}/{doomed}").status_code
                    )
                ),
                threading.Thread(
                    target=lambda into=results: into.update(
                        upload=upload(other, experiment, data).status_code
                    )
                ),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert results == {"delete": 204, "upload": 201}
            [left] = client.get(base).json()["data"]
            assert len(content_files(live_server, sha256)) == 1  # the survivor's content is there
            assert client.get(f"{base}/{left['id']}/content").content == data
            assert client.delete(f"{base}/{left['id']}").status_code == 204
            assert content_files(live_server, sha256) == []
