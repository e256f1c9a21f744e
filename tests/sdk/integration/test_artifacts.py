"""`client.artifacts` against the live server, sync and async: upload (a path or a file object), list, get,
download to a file (via `.partial`, checked by sha256), `open` with seek and ranged reads, delete; an upload whose
answer is lost is retried, re-reading the file, and stores one artifact."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import httpx
import pytest

import tally
from tally import AsyncTally, Tally
from tally_server import RunningServer

from ..conftest import AnyClient, call, collect, unique
from .test_dropped_response import AsyncDropFirstResponse, DropFirstResponse

pytestmark = pytest.mark.integration


async def test_upload_list_get_download_open_delete(client: AnyClient, tmp_path: Path) -> None:
    data = os.urandom(2_500_000)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    experiment = await call(client.experiments.create(unique("artifacts")))

    artifact = await call(client.artifacts.upload(experiment.id, source))
    assert isinstance(artifact, tally.Artifact)
    assert (artifact.name, artifact.size_bytes) == ("weights.bin", len(data))
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    small = await call(client.artifacts.upload(experiment.id, io.BytesIO(b"lr: 0.1\n"), name="config.yaml"))

    assert [a.id for a in await collect(client.artifacts.list(experiment.id))] == [artifact.id, small.id]
    assert await call(client.artifacts.get(experiment.id, small.id)) == small

    target = tmp_path / "out" / "weights.bin"
    target.parent.mkdir()
    written = await call(client.artifacts.download(experiment.id, artifact.id, to=target))
    assert written == target
    assert target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == ["weights.bin"]  # no .partial left

    reader = client.artifacts.open(experiment.id, artifact.id)
    if isinstance(client, AsyncTally):
        async with reader as f:
            assert f.size == len(data)
            f.seek(1_000_000)
            assert await f.read(10) == data[1_000_000:1_000_010]
            f.seek(-5, 2)
            assert await f.read() == data[-5:]
            assert await f.read(1) == b""
    else:
        with reader as f:
            f.seek(1_000_000)
            assert f.read(10) == data[1_000_000:1_000_010]
            assert f.tell() == 1_000_010
            f.seek(-5, 2)
            assert f.read() == data[-5:]
            assert f.read(1) == b""

    await call(client.artifacts.delete(experiment.id, small.id))
    with pytest.raises(tally.NotFoundError):
        await call(client.artifacts.get(experiment.id, small.id))


def test_a_changed_file_is_refused_not_stored(sync_client: Tally, tmp_path: Path) -> None:
    experiment = sync_client.experiments.create(unique("changed"))

    class Changing(io.BytesIO):
        """Reads one content while hashed, another while sent (a file written to during its upload)."""

        reads = 0

        def seek(self, offset: int, whence: int = 0) -> int:
            self.reads += 1
            if self.reads == 2:  # the upload's first attempt seeks back: the file changes now
                self.getbuffer()[0:4] = b"XXXX"
            return super().seek(offset, whence)

    with pytest.raises(tally.UnprocessableEntityError) as raised:
        sync_client.artifacts.upload(experiment.id, Changing(b"original content"), name="changing.txt")
    assert raised.value.code == "checksum_mismatch"
    assert list(sync_client.artifacts.list(experiment.id)) == []


def test_a_bad_file_argument_says_what_to_pass(sync_client: Tally, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file to upload"):
        sync_client.artifacts.upload("exp_x", tmp_path / "missing.bin")
    with pytest.raises(ValueError, match="needs name="):
        sync_client.artifacts.upload("exp_x", io.BytesIO(b"x"))
    with pytest.raises(TypeError, match="binary file"):
        sync_client.artifacts.upload("exp_x", io.StringIO("text"), name="t.txt")  # type: ignore[arg-type]


def test_an_upload_whose_answer_is_lost_stores_one_artifact(
    live_server: RunningServer, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    source = tmp_path / "ckpt.pt"
    source.write_bytes(data)
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as setup:
        experiment = setup.experiments.create(unique("lost"))
    transport = DropFirstResponse()
    with Tally(api_key=live_server.api_key, base_url=live_server.url, transport=transport) as client:
        artifact = client.artifacts.upload(experiment.id, source)
        stored = list(client.artifacts.list(experiment.id))
        with client.artifacts.open(experiment.id, artifact.id) as f:
            assert f.read() == data  # the retry re-read the file from its start
    assert transport.dropped == 1
    assert len(transport.keys) == 2
    assert len(set(transport.keys)) == 1
    assert [a.id for a in stored] == [artifact.id]


async def test_async_upload_whose_answer_is_lost_stores_one_artifact(
    live_server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "ckpt.pt"
    source.write_bytes(os.urandom(200_000))
    async with AsyncTally(api_key=live_server.api_key, base_url=live_server.url) as setup:
        experiment = await setup.experiments.create(unique("lost-async"))
    transport = AsyncDropFirstResponse()
    async with AsyncTally(
        api_key=live_server.api_key, base_url=live_server.url, transport=transport
    ) as client:
        artifact = await client.artifacts.upload(experiment.id, source)
        stored = await collect(client.artifacts.list(experiment.id))
    assert transport.dropped == 1
    assert len(set(transport.keys)) == 1
    assert len(transport.keys) == 2
    assert [a.id for a in stored] == [artifact.id]


def test_a_damaged_download_leaves_nothing(live_server: RunningServer, tmp_path: Path) -> None:
    """The server's bytes and its ETag disagree (as a damaged transfer would): ChecksumMismatchError, and
    neither the file nor its .partial is left."""

    class Corrupting(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.url.path.endswith("/content"):
                body = bytearray(response.read())
                response.close()
                body[0] ^= 0xFF
                return httpx.Response(response.status_code, headers=response.headers, content=bytes(body))
            return response

        def close(self) -> None:
            self.inner.close()

    with Tally(api_key=live_server.api_key, base_url=live_server.url, transport=Corrupting()) as client:
        experiment = client.experiments.create(unique("damaged"))
        artifact = client.artifacts.upload(experiment.id, io.BytesIO(b"precious bytes"), name="p.bin")
        target = tmp_path / "p.bin"
        with pytest.raises(tally.ChecksumMismatchError):
            client.artifacts.download(experiment.id, artifact.id, to=target)
    assert list(tmp_path.iterdir()) == []


def test_run_log_artifact_uploads_a_copy_in_log_order(sync_client: Tally, tmp_path: Path) -> None:
    """The file is copied at log time (overwritten right after, the original is what is stored), uploaded after
    the metrics logged before it, and the copy leaves the spool once stored."""
    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"epoch 1 weights")
    with sync_client.run(unique("run-artifact")) as run:
        run.log({"loss": 0.9})
        run.log_artifact(checkpoint, name="checkpoints/epoch-1.pt")
        checkpoint.write_bytes(b"epoch 2 weights, written in place")  # the usual torch.save to the same path
        run.log({"loss": 0.8})
        with pytest.raises(FileNotFoundError, match="no file"):
            run.log_artifact(tmp_path / "missing.pt")
        with pytest.raises(ValueError, match="control characters"):
            run.log_artifact(checkpoint, name="bad\nname")
        spool = Path(run.status().spool or "")
    [artifact] = list(sync_client.artifacts.list(run.id))
    assert artifact.name == "checkpoints/epoch-1.pt"
    target = tmp_path / "restored.pt"
    sync_client.artifacts.download(run.id, artifact.id, to=target)
    assert target.read_bytes() == b"epoch 1 weights"
    assert len(list(sync_client.metrics.list(run.id))) == 2
    assert not spool.exists()  # the spool, and the copy in it, are gone once everything is stored
