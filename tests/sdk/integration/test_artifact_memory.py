"""Artifacts of any size take a few MiB of memory, on both sides: a 256 MiB file (sparse on disk, never in
memory) is uploaded and downloaded through the SDK against a server process of its own, and the peak RSS growth
of the server (by its pid) and of this process stays within a few MiB. The peaks are the kernel's (`VmHWM`),
reset first through `/proc/<pid>/clear_refs`, so a brief spike counts."""

from __future__ import annotations

import hashlib
import io
import os
import sys
from pathlib import Path

import pytest

from tally import Tally
from tally_server.process import start_server_process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

SIZE = 256 * 1024 * 1024
KEY = "tk_org_" + "ArtifactMemoryBootstrapKey012345"
ALLOWED_MIB = 16  # "a few MiB": a chunk or two in flight, buffers, and the allocator's slack


def _status(pid: int | str, field: str) -> int:
    """A /proc/<pid>/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _reset_peak(pid: int | str) -> int:
    """Reset the process's peak RSS to its current RSS (Linux 4.0+) and answer that RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status(pid, "VmRSS")


def test_a_256_mib_artifact_takes_a_few_mib_on_both_sides(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as f:
        f.truncate(SIZE)
        f.seek(SIZE - 5)
        f.write(b"tail!")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env["TALLY_SERVER_BOOTSTRAP_KEY"] = KEY
    env["TALLY_CONFIG_DIR"] = str(tmp_path / "config")
    args = ["--db", str(tmp_path / "server.sqlite3"), "--log-level", "warning"]
    with (
        start_server_process(args, logs=tmp_path / "logs", env=env) as server,
        Tally(api_key=KEY, base_url=server.url) as client,
    ):
        experiment = client.experiments.create("memory")
        # A small upload and download first: both sides import and allocate what any transfer needs.
        warm = client.artifacts.upload(experiment.id, io.BytesIO(os.urandom(3 * 1024 * 1024)), name="warm")
        client.artifacts.download(experiment.id, warm.id, to=tmp_path / "warm.bin")
        server_before, client_before = _reset_peak(server.pid), _reset_peak("self")

        artifact = client.artifacts.upload(experiment.id, source)
        target = tmp_path / "back.bin"
        client.artifacts.download(experiment.id, artifact.id, to=target)

        server_growth = _status(server.pid, "VmHWM") - server_before
        client_growth = _status("self", "VmHWM") - client_before
    assert artifact.size_bytes == SIZE
    with target.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == artifact.sha256
    mib = 1024 * 1024
    print(f"peak RSS growth: server {server_growth / mib:.1f} MiB, client {client_growth / mib:.1f} MiB")
    assert server_growth < ALLOWED_MIB * mib, f"the server grew by {server_growth / mib:.1f} MiB"
    assert client_growth < ALLOWED_MIB * mib, f"the client grew by {client_growth / mib:.1f} MiB"
