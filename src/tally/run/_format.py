"""The spool's file format, and its recovery: pure functions over bytes, no I/O.

A run's spool is a directory (see `tally.run._spool`) holding numbered *segment* files, which only the training
process appends to, and one *progress* file, which only the sender appends to. Both use the same framing.

File layout
-----------
Every file starts with the 8-byte magic ``b"TSPOOL1\\n"``, then holds records back to back::

    offset  size  field
    0       4     length   payload length in bytes, unsigned 32-bit little-endian
    4       4     checksum zlib.crc32 of the payload, unsigned 32-bit little-endian
    8       n     payload  one MessagePack array (msgspec), described below

A record is copied whole into the segment's memory map (the kernel's page cache) before `log()` returns, so after
a crash a file holds whole records and at most one torn record at its end: a frame whose header or payload is cut
short, or whose checksum disagrees. A segment file is grown ahead of its writes, so its unwritten rest is zeros:
a header of eight zero bytes is the end of the data, not a record (no payload is empty).

Recovery (`decode_records`) reads frames from the start, checks each checksum, and stops at the first frame that
is incomplete or does not check: everything before it replays; the bytes from it to the end of the file are the
*torn tail*, reported (with their size) and skipped, never silently. While the writer is alive an incomplete last
frame only means "not written yet", so the live sender waits for it instead (`final=False`).

Segment payloads (what the training process logged), in log order; ``seq`` counts records from 1 for the run::

    [0, {"run_key", "create_key", "name", "experiment_id", "folder_id", "description", "metadata", "created",
         "tags", "resume"}]
        the run's header: the first record of segment 1 (`metadata` holds the config under `config`; `tags` and
        `resume`, "allow" | "must" | "never", are absent from spools of older SDKs: `resume` present means the
        experiment is looked up, reopened or created per `tally.run._resume` before anything is sent)
    [1, seq, step | nil, unix_time, labels | nil, {metric_name: value, ...}]
        one `run.log(...)` call (this SDK always writes the step: the run's counter when none is given; nil is
        read, from spools of older SDKs)
    [2, seq, text, step | nil, unix_time, metadata | nil]
        one `run.annotate(...)` call
    [3, seq, status]
        the run ended: mark the experiment `completed` or `failed`
    [4, seq, {dotted_key: value, ...} | nil, [tag, ...] | nil]
        `run.config.update(...)`, or the config and tags of a resumed run: merged into the experiment's metadata
        under `config` (see `tally.run._config`), the tags added to its own
    [5, seq, {item: value, ...}]
        what the run captured of where it runs (`tally.run._capture`): set as the experiment's metadata key
        `capture`, replacing an earlier one (older SDKs skip this kind)
    [6, seq, name, path, size, sha256, unix_time]
        `run.log_artifact(...)`: the file copied at `path` (relative to the spool directory, or absolute for a run
        without one), uploaded as artifact `name` under the Idempotency-Key ``<run_key>.<seq>.artifact`` (see
        `tally.run._artifact`)

Progress payloads (what the sender knows is stored on the server)::

    [10, experiment_id]                      the experiment exists (created under a stable Idempotency-Key)
    [11, segment, offset, stored, rejected, done_seq, duplicates]
                                             every record of the segments before `segment`, and of `segment`
                                             before byte `offset`, is stored; running totals of events; the
                                             `seq` of the last record done, and the events the server already
                                             had (the last two are absent from progress files of older SDKs)
    [12]                                     the end record was sent: nothing of this run is pending

The last valid progress record wins; a torn progress tail costs at most a replay of one batch, which the server
counts as duplicates. Each event's `client_event_id` is ``<run_key>.<seq>.<index>`` (``<run_key>.<seq>.a`` for an
annotation), with `seq` in hex: stable across replays, unique within the experiment, so the server stores each
event exactly once.

Why our own format: measured on this machine (10 metrics a step, 20,000 steps, median), one ``os.write`` of a
msgpack+crc32 frame costs 1.5 µs a step (a copy into a memory map, less); SQLite in WAL mode with
``synchronous=OFF`` 7.5 µs; ``persist-queue`` 130 µs (``Queue``) and 170 µs (``SQLiteQueue``), against a budget
of 15 µs a step. None of the libraries adds a guarantee the frame above lacks (the kernel has the bytes once the
copy returns; a checksum finds a torn end).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = [
    "HEADER",
    "KIND_ANNOTATION",
    "KIND_ARTIFACT",
    "KIND_CAPTURE",
    "KIND_CONFIG",
    "KIND_END",
    "KIND_EXPERIMENT",
    "KIND_FINISHED",
    "KIND_LOG",
    "KIND_PROGRESS",
    "KIND_RUN",
    "MAGIC",
    "Decoded",
    "TornTail",
    "decode_records",
    "frame",
    "last_progress",
]

MAGIC = b"TSPOOL1\n"
HEADER = struct.Struct("<II")

KIND_RUN = 0
KIND_LOG = 1
KIND_ANNOTATION = 2
KIND_END = 3
KIND_CONFIG = 4
KIND_CAPTURE = 5
KIND_ARTIFACT = 6
KIND_EXPERIMENT = 10
KIND_PROGRESS = 11
KIND_FINISHED = 12

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_pack = HEADER.pack
_crc = zlib.crc32


def frame(payload: Any) -> bytes:
    """One record, ready for a single `os.write`: length, checksum, msgpack payload."""
    body = _encode(payload)
    return _pack(len(body), _crc(body)) + body


@dataclass(frozen=True)
class TornTail:
    """Bytes at the end of a file that are not a whole, valid record: skipped, and said so."""

    offset: int
    size: int
    reason: str


@dataclass(frozen=True)
class Decoded:
    """What `decode_records` found: `(end_offset, payload)` pairs, where the next read starts, a torn tail."""

    records: list[tuple[int, Any]]
    end: int
    torn: TornTail | None


def decode_records(
    data: bytes | memoryview, *, base: int = 0, final: bool = True, racing: bool = False
) -> Decoded:
    """The valid records of `data`, which starts at file offset `base` on a record boundary.

    `final=True` (a file no one writes to any more): the first incomplete or corrupt frame and all after it are
    the torn tail. `final=False` (a file still being appended to): an incomplete last frame is left for a later
    read and is not torn; a checksum mismatch still is, unless `racing`: the writer is another process, whose
    copy of a frame may be under way while it is read (its bytes, length and checksum included, arrive in no set
    order), so a frame that does not check is left for a later read too. A frame that is really corrupt is then
    reported once the file is final (the writer has moved to the next segment, or is gone)."""
    view = memoryview(data)
    size = len(view)
    position = 0
    records: list[tuple[int, Any]] = []
    torn: TornTail | None = None
    header_size = HEADER.size
    unpack = HEADER.unpack_from
    while position < size:
        if size - position < header_size:
            if final:
                torn = TornTail(base + position, size - position, "incomplete record header")
            break
        length, checksum = unpack(view, position)
        if length == 0 and checksum == 0:
            break  # zeros: the unwritten rest of a segment file grown ahead of its writes
        start = position + header_size
        if size - start < length:
            if final:
                torn = TornTail(base + position, size - position, "incomplete record")
            break
        body = view[start : start + length]
        if _crc(body) != checksum:
            if racing and not final:
                break  # perhaps still being copied by the writer
            torn = TornTail(base + position, size - position, "checksum mismatch")
            break
        try:
            payload = _decode(body)
        except msgspec.DecodeError:
            if racing and not final:
                break
            torn = TornTail(base + position, size - position, "undecodable record")
            break
        position = start + length
        records.append((base + position, payload))
    return Decoded(records, base + position, torn)


def last_progress(data: bytes) -> dict[str, Any]:
    """The state a progress file records: `experiment_id`, `segment`, `offset`, `stored`, `rejected`,
    `done_seq`, `duplicates`, `finished`; the last valid record of each kind wins, a torn tail is ignored (it
    costs one batch's replay)."""
    state: dict[str, Any] = {
        "experiment_id": None,
        "segment": 1,
        "offset": len(MAGIC),
        "stored": 0,
        "rejected": 0,
        "done_seq": 0,
        "duplicates": 0,
        "finished": False,
    }
    if not data.startswith(MAGIC):
        return state
    for _end, payload in decode_records(data[len(MAGIC) :], base=len(MAGIC)).records:
        kind = payload[0]
        if kind == KIND_EXPERIMENT:
            state["experiment_id"] = payload[1]
        elif kind == KIND_PROGRESS:
            state["segment"], state["offset"], state["stored"], state["rejected"] = payload[1:5]
            state["done_seq"], state["duplicates"] = [*payload[5:7], 0, 0][:2]  # (older SDKs: absent)
        elif kind == KIND_FINISHED:
            state["finished"] = True
    return state


def run_header(payload: Any) -> Mapping[str, Any] | None:
    """The run's header map when `payload` is a header record, else None."""
    if isinstance(payload, list) and payload and payload[0] == KIND_RUN and isinstance(payload[1], dict):
        header: Mapping[str, Any] = payload[1]
        return header
    return None
