"""Artifacts, for `make bench` (`--only artifacts`): a 1 GiB file up and down through the SDK against a raw httpx
stream of the same file to and from the same server, and the memory both sides take while doing it.

- Upload: `client.artifacts.upload(experiment_id, path)` (which reads the file once for its sha256, then streams
  it) against `httpx.post(..., content=<the file in 1 MiB chunks>)` to the same operation, given the sha256
  computed beforehand (not timed: a raw client must send one too). Target: throughput ratio SDK / raw >= 0.8.
  Also with `sha256=` given (what `run.log_artifact`'s sender does: it hashed the file while copying it), which
  saves the SDK that read.
- Download: `client.artifacts.download(..., to=path)` (written to `.partial`, hashed, renamed) against
  `httpx.stream("GET", ...)` written to a file. Target: >= 0.8.
- Memory: the peak RSS growth (the kernel's `VmHWM`, reset through `/proc/<pid>/clear_refs` before) of the
  server process and of this process over one SDK upload and download of the file. Target: <= 32 MiB each.

One server process on a SQLite file (its artifacts next to it), the file sparse (zeros but for a few bytes: the
same bytes for both sides, no disk needed for it); one warm-up transfer of each kind, then three interleaved
rounds (medians). `--quick`: 256 MiB, one round.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from tally_server.process import start_server_process

__all__ = ["run"]

Report = Callable[[str, str, float | None, str, bool], None]

_MIB = 2**20
_CHUNK = _MIB


def _status(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def _reset_peak(pid: int | str) -> int:
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status(pid, "VmRSS")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def run(report: Report, *, quick: bool) -> None:
    from tally import Tally

    size = (256 if quick else 1024) * _MIB
    rounds = 1 if quick else 3
    api_key = "tk_org_" + secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="tally-bench-artifacts-") as scratch:
        root = Path(scratch)
        source = root / "big.bin"
        with source.open("wb") as f:
            f.truncate(size)
            f.seek(size // 2)
            f.write(b"bench")
        with source.open("rb") as f:
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        env = {**os.environ, "TALLY_SERVER_BOOTSTRAP_KEY": api_key, "TALLY_CONFIG_DIR": f"{scratch}/config"}
        args = ["--db", f"{scratch}/artifacts.sqlite3", "--log-level", "warning"]
        headers = {"Authorization": f"Bearer {api_key}"}
        with (
            start_server_process(args, logs=f"{scratch}/server-logs", env=env, timeout=30) as server,
            Tally(api_key=api_key, base_url=server.url, timeout=60.0) as client,
            httpx.Client(base_url=server.url, headers=headers, timeout=60.0) as raw,
        ):
            experiment_id = client.experiments.create("bench-artifacts").id
            collection = f"/v1/experiments/{experiment_id}/artifacts"

            def sdk_upload() -> str:
                return client.artifacts.upload(experiment_id, source).id

            def sdk_upload_known() -> str:  # the digest given, as run.log_artifact's sender does
                return client.artifacts.upload(experiment_id, source, sha256=sha256).id

            def raw_upload() -> str:
                answer = raw.post(
                    collection,
                    params={"name": source.name, "sha256": sha256},
                    content=_chunks(source),
                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                )
                answer.raise_for_status()
                return str(answer.json()["id"])

            def sdk_download(artifact_id: str) -> None:
                client.artifacts.download(experiment_id, artifact_id, to=root / "sdk.bin")

            def raw_download(artifact_id: str) -> None:
                with (
                    raw.stream("GET", f"{collection}/{artifact_id}/content") as answer,
                    (root / "raw.bin").open("wb") as out,
                ):
                    answer.raise_for_status()
                    for chunk in answer.iter_bytes(_CHUNK):
                        out.write(chunk)

            artifact_id = sdk_upload()  # warm: imports, allocations, the page cache of the file
            raw_upload()
            sdk_download(artifact_id)
            raw_download(artifact_id)

            times: dict[str, list[float]] = {
                "sdk_up": [], "sdk_up_known": [], "raw_up": [], "sdk_down": [], "raw_down": []
            }  # fmt: skip
            for _ in range(rounds):  # interleaved: the shared machine's drift falls on both sides alike
                for name, action in (
                    ("sdk_up", sdk_upload),
                    ("sdk_up_known", sdk_upload_known),
                    ("raw_up", raw_upload),
                    ("sdk_down", lambda: sdk_download(artifact_id)),
                    ("raw_down", lambda: raw_download(artifact_id)),
                ):
                    started = time.perf_counter()
                    action()
                    times[name].append(time.perf_counter() - started)

            server_before, client_before = _reset_peak(server.pid), _reset_peak("self")
            sdk_download(sdk_upload())
            server_growth = _status(server.pid, "VmHWM") - server_before
            client_growth = _status("self", "VmHWM") - client_before

    median = {name: statistics.median(values) for name, values in times.items()}
    shown = f"{size // _MIB:,} MiB"
    for way, sdk, raw_s in (
        ("upload", median["sdk_up"], median["raw_up"]),
        ("upload, sha256 given (as run.log_artifact sends it)", median["sdk_up_known"], median["raw_up"]),
        ("download", median["sdk_down"], median["raw_down"]),
    ):
        ratio = raw_s / sdk  # throughput SDK / raw
        report(
            f"artifact {way} of {shown}: SDK vs a raw httpx stream (throughput ratio)",
            f"{size / _MIB / sdk:,.0f} MiB/s vs {size / _MIB / raw_s:,.0f} MiB/s ({sdk:.2f} s vs {raw_s:.2f} s)",
            ratio,
            ">= 0.8",
            ratio >= 0.8,
        )
    for side, growth in (("server", server_growth), ("client", client_growth)):
        report(
            f"{side} peak RSS growth, artifact upload + download of {shown}",
            f"{growth / _MIB:.1f} MiB",
            None,
            "<= 32 MiB",
            growth <= 32 * _MIB,
        )
