"""Sending a spool to the server through the public client, seen as a `SenderPort` (`_port`): `Drain` (one
spool, one batch at a time, in order, resumable) and `Sender` (the background thread that keeps drains going,
with backoff, for as long as the process lives).

Exactly once: every metric event carries `client_event_id = <run_key>.<seq>.<index>` and every annotation
`<run_key>.<seq>.a`, so a batch re-sent after a lost answer, a crash or a restart is counted by the server as
duplicates, never stored twice. The experiment is created under a stable Idempotency-Key kept in the run's header
(the server keeps keys for at least 24 hours: only a creation whose answer was lost and that is retried more than
24 hours later could make a second experiment). Batches go one at a time, in log order.

Errors (`verdict`): connection errors, timeouts, 401, 429 and 5xx are retried forever with exponential backoff
(the client has already retried a few times inside each call). What no retry can change never blocks the records
after it, and never takes valid events down with it:
- a batch refused as a whole for what is in it (400, 413, 422), or refused by the SDK's own checks at send time
  (a `ValueError` or `TypeError`: a spool written by an older SDK), is split in halves and resent, until the
  refused events are isolated: the others are stored;
- a batch refused for where it goes (403, 404, 409: an experiment deleted or closed meanwhile) is refused whole;
- refused events and annotations, `client_event_id` conflicts, and records that cannot be read go to the run's
  dead-letter file (`_deadletter`) with the reason, are counted as rejected, and the run goes on.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec

from tally._chunked import ChunkedBody, JsonArrayBuilder
from tally._errors import APIStatusError, ConflictError, TallyError
from tally._events import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from tally._logging import logger
from tally._retry_policy import backoff_delay

from ._deadletter import DeadLetter, dead_letter_path, error_info
from ._format import (
    KIND_ANNOTATION,
    KIND_ARTIFACT,
    KIND_CAPTURE,
    KIND_CONFIG,
    KIND_END,
    KIND_EXPERIMENT,
    KIND_FINISHED,
    KIND_LOG,
    KIND_PROGRESS,
    KIND_RUN,
    MAGIC,
    TornTail,
    decode_records,
    frame,
    last_progress,
)
from ._port import SenderPort
from ._resume import ResumeError, resolve_experiment
from ._spool import (
    SpoolLock,
    Store,
    lower_thread_priority,
    read_header,
    read_progress,
    remove_spool,
)

__all__ = ["REFUSE", "RETRY", "SPLIT", "Drain", "Sender", "is_rejection", "verdict"]

BATCH_EVENTS = MAX_BATCH_EVENTS
"""Events per ingest call: the contract's limit per request (`tally_api_types.limits`, via `tally._events`)."""
ENCODED_BATCH_EVENTS = BATCH_EVENTS
"""Events per body the sender encodes itself (`_log_fragment`): the contract's maximum. 5,000 kept the training
process's peak RSS growth at 7 MiB instead of 11 (logging 1,000,000 values), but took 25% longer end to end
(1,000,000 values, 4 interleaved rounds, 2026-12-04): the server's cost is per request as much as per event."""
READ_BYTES = 32 << 10
"""Spool bytes decoded at a time: a quarter of a batch of records (10,000 values of 10-metric steps take ~140 KiB),
so the decoded records held at once stay small (1 MiB held ~10 MiB of decoded records, most of the training
process's growth while it logged; 128 KiB held 0.4 MiB more than 32 KiB at the Python heap's peak, tracemalloc,
2026-12-04), for four reads a batch instead of one."""
MAX_REASONS = 10
"""Refusal reasons a drain keeps for `RunRejectedError` (the count is exact; the reasons are the first ones)."""
RETRY, SPLIT, REFUSE = "retry", "split", "refuse"
_SPLIT_STATUSES = frozenset({400, 413, 422})
"""Refusals of what a batch holds: one event can cause them, so the batch is split to find it."""
_REFUSE_STATUSES = frozenset({403, 404, 409})
"""Refusals of where a batch goes: every event of it would be refused alike."""


def rfc3339(stamp: float) -> str:
    """A record's `log()` time as the event's `timestamp`, to the millisecond: deterministic, so a re-sent event
    is the same payload (a duplicate, not a conflict), and shorter on the wire than microseconds."""
    millis = round(stamp * 1000)
    seconds, fraction = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:03d}Z"


def verdict(error: BaseException) -> str:
    """What to do about a failed send: `RETRY` it later, `SPLIT` its batch to isolate the refused events, or
    `REFUSE` the whole batch (dead-letter it)."""
    if isinstance(error, ResumeError):
        return REFUSE
    if isinstance(error, APIStatusError):
        if error.code == "idempotency_in_progress":
            return RETRY
        if error.status_code in _SPLIT_STATUSES:
            return SPLIT
        if error.status_code in _REFUSE_STATUSES:
            return REFUSE
        return RETRY
    if isinstance(error, ValueError | TypeError) and not isinstance(error, TallyError):
        return SPLIT  # the SDK's own checks refused the data: no retry can change it
    return RETRY


def _reason(error: BaseException | str) -> str:
    """A refusal for humans (an API error's text names its status, code, message and request id)."""
    return str(error)


def is_rejection(error: BaseException) -> bool:
    """True for a failure that no retry can change."""
    return verdict(error) != RETRY


class WriterView(Protocol):
    """What a `Drain` asks of the run's writer: a `SpoolWriter` in this process, or a writer in another process as
    a sender process sees it (`_sender_child.ParentWriter`)."""

    closed: bool
    racing: bool

    def release(self, number: int) -> None: ...


class ProgressLog:
    """The sender's append-only record of what is stored (a file, or nothing for a memory spool)."""

    def __init__(self, directory: Path | None) -> None:
        self._fd: int | None = None
        if directory is not None:
            path = directory / "progress"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if os.fstat(self._fd).st_size == 0:
                os.write(self._fd, MAGIC)

    def append(self, payload: list[Any]) -> None:
        if self._fd is not None:
            os.write(self._fd, frame(payload))

    def sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Event(msgspec.Struct, gc=False, omit_defaults=True):
    """One metric event as an ingest body has it (`MetricEvent`'s fields). `gc=False`: the collector neither
    tracks nor counts it, so the sender's batches trigger no collections in the training process (a full one
    walks its whole heap, tens of ms with the GIL held)."""

    name: str
    value: Any
    timestamp: str
    client_event_id: str
    step: int | None = None
    metadata: Any = None


_encode_events = msgspec.json.Encoder().encode
_decode_body = msgspec.json.Decoder().decode


def _log_fragment(payload: Any, run_key: str) -> tuple[bytes, int]:
    """The metric events of one `run.log()` record, encoded as the comma-separated members of an ingest body's
    `events` array, and how many there are: what `_log_events` builds, without a dict per event. Raises on a
    record that is not one."""
    kind, seq, step, stamp, labels, values = payload
    if kind != KIND_LOG or not isinstance(values, dict):
        raise ValueError("not a log record")
    if not values:
        return b"", 0
    when = rfc3339(stamp)
    prefix = f"{run_key}.{seq:x}."
    labels = labels or None
    encoded = _encode_events(
        [
            _Event(name, value, when, prefix + str(index), step, labels)
            for index, (name, value) in enumerate(values.items())
        ]
    )
    return encoded[1:-1], len(values)


def _events_of(sent: list[dict[str, Any]] | ChunkedBody) -> list[dict[str, Any]]:
    """A batch's events as dicts: those given, or those of a body encoded by `_log_fragment` (to split it or
    dead-letter what it holds)."""
    if isinstance(sent, ChunkedBody):
        events: list[dict[str, Any]] = _decode_body(sent.join())["events"]
        return events
    return sent


class _Pending:
    """The answer to one call that a `_Worker` makes."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._result


class _Worker:
    """One daemon thread that makes calls handed to it, one at a time. (Not `ThreadPoolExecutor`: its threads
    are joined at interpreter exit, and a request to a server that never answers would then hang the exit.)"""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[_Pending, Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def submit(self, function: Callable[..., Any], *args: Any) -> _Pending:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tally-run-request", daemon=True)
            self._thread.start()
        pending = _Pending()
        self._calls.put((pending, function, args))
        return pending

    def _run(self) -> None:
        lower_thread_priority()
        while (call := self._calls.get()) is not None:
            pending, function, args = call
            try:
                pending._result = function(*args)
            except BaseException as error:
                pending._error = error
            pending._done.set()
            # Not held while waiting for the next call: a batch's body is MiBs the training process would keep.
            del call, args

    def stop(self) -> None:
        if self._thread is not None:
            self._calls.put(None)
            self._thread = None


class Drain:
    """Sends one spool's records in order. `step()` does one unit of work (create the experiment, send one
    batch, one annotation, or the end) and returns False when there is nothing to send right now.

    `writer` is the live run's writer when the spool is still being appended to (then an incomplete last record
    is "not yet written"); None for a spool no one writes (then it is a torn tail: skipped and reported)."""

    def __init__(
        self,
        store: Store,
        client: SenderPort | None,
        *,
        directory: Path | None,
        writer: WriterView | None = None,
        header: dict[str, Any] | None = None,
        lock: SpoolLock | None = None,
        superseded: bool = False,
    ) -> None:
        self.store = store
        self._client = client
        self.lock = lock
        self.directory = directory
        self.writer = writer
        state = read_progress(directory) if directory is not None else last_progress(b"")
        self.progress = ProgressLog(directory)
        self.header: dict[str, Any] | None = header if header is not None else _header(store)
        self.experiment_id: str | None = state["experiment_id"]
        self.opened = self.experiment_id is not None  # the experiment is settled: created, or resumed
        if self.experiment_id is None and self.header and self.header.get("experiment_id"):
            self.experiment_id = str(self.header["experiment_id"])
        self.superseded = superseded
        self.segment: int = state["segment"]
        self.offset: int = state["offset"]
        self.stored: int = state["stored"]
        self.rejected: int = state["rejected"]
        self.finished: bool = state["finished"]
        self.duplicates: int = state["duplicates"]
        # (Kept in the progress file, so that a sender process started again knows how far the last one got.)
        self.done_seq: int = state["done_seq"]
        self.torn: list[tuple[int, TornTail]] = []
        self.last_error: str | None = None
        self.reasons: list[tuple[int, str]] = []  # (rejected before it, the reason): the first MAX_REASONS
        self.blocked: str | None = None  # why nothing of this spool can be sent (a resume that cannot be)
        self.dead_letter = DeadLetter(dead_letter_path(directory)) if directory is not None else None
        self._buffer: deque[tuple[int, int, Any]] = deque()  # (segment, end offset, payload)
        self._read_segment = self.segment
        self._read_offset = self.offset
        self._worker = _Worker()
        self._inflight: tuple[_Pending, list[dict[str, Any]] | ChunkedBody, tuple[int, int, Any]] | None = (
            None
        )
        # Records of the live run's own spool were checked by `run.log()` when it took them (`tally._limits`,
        # the same checks `metrics.ingest` makes): they are encoded straight into a body (`_log_fragment`) and
        # sent with the port's `ingest_encoded`, when it has one. A spool no one writes (a leftover, `tally
        # sync`) may come from another SDK: its events go through `client.ingest` and every check.
        self._send_encoded: Callable[[str, ChunkedBody], Any] | None = (
            getattr(client, "ingest_encoded", None) if writer is not None else None
        )
        self._segment_done = False
        self._racing = writer is not None and writer.racing
        """The writer is another process: a record may be read while it is copied (`decode_records`)."""

    @property
    def client(self) -> SenderPort:
        if self._client is None:
            raise RuntimeError("an offline run does not send; sync its spool with `tally sync`")
        return self._client

    # ---- reading ----------------------------------------------------------------------------------------------
    def _fill(self) -> None:
        """Decode the next chunk of records into the buffer (moving on to the next segment at the end of one)."""
        size = READ_BYTES
        while not self._buffer:
            segments = self.store.segments()
            later = [n for n in segments if n > self._read_segment]
            if self._read_segment not in segments:
                if not later:
                    return
                logger.warning("tally: spool segment %d is gone (dropped at the cap)", self._read_segment)
                self._read_segment, self._read_offset = later[0], len(MAGIC)
                continue
            # Listed before reading: once a later segment exists, this one gets no more writes.
            final = bool(later) or self.writer is None or self.writer.closed
            data = self.store.read(self._read_segment, self._read_offset, size)
            if data is None:
                continue
            full = len(data) == size
            decoded = decode_records(
                data, base=self._read_offset, final=final and not full, racing=self._racing
            )
            for end, payload in decoded.records:
                self._buffer.append((self._read_segment, end, payload))
            self._read_offset = decoded.end
            if decoded.torn is not None:
                self.torn.append((self._read_segment, decoded.torn))
                logger.warning(
                    "tally: spool %s segment %d: %d bytes at offset %d skipped (%s); the records before "
                    "them replay",
                    self.store.location,
                    self._read_segment,
                    decoded.torn.size,
                    decoded.torn.offset,
                    decoded.torn.reason,
                )
                if later:
                    self._read_segment, self._read_offset = later[0], len(MAGIC)
                else:
                    self._read_offset += decoded.torn.size
                continue
            if decoded.records:
                continue
            if full:
                size *= 2  # one record larger than the chunk
                continue
            if later:
                self._read_segment, self._read_offset = later[0], len(MAGIC)
                continue
            return

    def _refill(self) -> bool:
        self._fill()
        return bool(self._buffer)

    # ---- sending ----------------------------------------------------------------------------------------------
    def _ack(self, segment: int, offset: int) -> None:
        if segment > self.segment:
            for number in range(self.segment, segment):
                if self.writer is not None:
                    self.writer.release(number)
                else:
                    self.store.delete(number)
        self.segment, self.offset = segment, offset
        self.progress.append(
            [KIND_PROGRESS, segment, offset, self.stored, self.rejected, self.done_seq, self.duplicates]
        )

    def opened_as(self, experiment_id: str) -> None:
        """The experiment is settled (created or resumed, at the run's start or here): recorded once."""
        self.experiment_id = experiment_id
        self.opened = True
        self.progress.append([KIND_EXPERIMENT, experiment_id])

    def _ensure_experiment(self) -> str:
        if self.opened and self.experiment_id is not None:
            return self.experiment_id
        header = self.header
        assert header is not None
        if header.get("resume"):  # resume=..., or experiment_id=: look it up, reopen it or create it
            experiment_id, _ = resolve_experiment(self.client, header, patient=True)
        elif header.get("experiment_id"):  # a spool of an SDK before resume=
            experiment_id = str(header["experiment_id"])
        else:
            experiment_id = self.client.create_experiment(
                str(header["name"]),
                description=header.get("description"),
                metadata=header.get("metadata"),
                folder_id=header.get("folder_id"),
                tags=header.get("tags"),
                idempotency_key=str(header.get("create_key") or f"tally-run-{header['run_key']}"),
                group=header.get("group"),
            )
        self.opened_as(experiment_id)
        return experiment_id

    def step(self) -> bool:
        """Do one unit of work; False when caught up. Raises the client's errors that a retry may cure (see
        `verdict`); what no retry can cure is dead-lettered here.

        Metric batches are pipelined: while one batch is in flight (in the drain's worker thread), the next is
        read and built here; it is sent only once the first is answered, so batches still reach the server one
        at a time, in order."""
        if self.finished:
            return False
        self._fill()
        if not self._buffer:
            if self._inflight is not None:
                self._settle()
                return True
            return False
        if self.header is None:
            first = self._buffer[0][2]
            if isinstance(first, list) and first and first[0] == KIND_RUN:
                self.header = dict(first[1])
        if self.blocked is not None:
            return False
        try:
            experiment_id = self._ensure_experiment()
        except Exception as error:
            if verdict(error) == RETRY:
                raise
            self.blocked = self.last_error = _reason(error)
            logger.warning("tally: run %r cannot send: %s", self._run_name(), self.blocked)
            return False
        buffer = self._buffer
        run_key = str(self.header["run_key"]) if self.header else ""
        events: list[dict[str, Any]] = []
        encoded = self._send_encoded is not None
        body = JsonArrayBuilder(b'{"events":[', b"]}")  # (encoded) the body, in parts, as members come
        body_bytes = 0
        count = 0  # events in the batch, either way
        last: tuple[int, int, Any] | None = None
        while buffer or (count and count < BATCH_EVENTS and self._refill()):
            segment, end, payload = buffer[0]
            kind = payload[0] if isinstance(payload, list) and payload else None
            if kind == KIND_RUN:
                buffer.popleft()
                last = (segment, end, payload)
                continue
            if kind == KIND_LOG or kind is None:
                try:
                    if encoded:
                        fragment, size = _log_fragment(payload, run_key)
                    else:
                        built = _log_events(payload, run_key)
                        size = len(built)
                except Exception as error:  # a record no SDK of ours writes: keep it, with why, and go on
                    self._refuse(
                        [
                            (
                                "record",
                                {"payload": repr(payload)},
                                error_info(f"unreadable spool record: {error!r}"),
                            )
                        ],
                        _event_count(payload),
                        error,
                    )
                    buffer.popleft()
                    last = (segment, end, payload)
                    continue
                if count and count + size > (ENCODED_BATCH_EVENTS if encoded else BATCH_EVENTS):
                    break
                if encoded:
                    if count and body_bytes + len(fragment) + 16 > MAX_BATCH_BYTES:
                        break
                    if size:
                        body.add(fragment)
                        body_bytes += len(fragment) + 1
                else:
                    events.extend(built)
                count += size
                buffer.popleft()
                last = (segment, end, payload)
                continue
            if count:
                break  # send the metrics logged before this annotation or end first, to keep the order
            if self._inflight is not None:
                self._settle()
            buffer.popleft()
            self._send_other(experiment_id, run_key, payload)
            self.done_seq = _seq(payload, self.done_seq)
            if kind == KIND_END:
                self._finish(segment, end)
                return True
            self._ack(segment, end)
            return True
        if self._inflight is not None:
            self._settle()
        if count:
            assert last is not None
            if self._send_encoded is not None:
                sent = body.finish()
                self._inflight = (self._worker.submit(self._send_encoded, experiment_id, sent), sent, last)
            else:
                self._inflight = (
                    self._worker.submit(self.client.ingest, experiment_id, events),
                    events,
                    last,
                )
        elif last is not None:
            self.done_seq = _seq(last[2], self.done_seq)
            self._ack(last[0], last[1])
        return True

    def _settle(self) -> None:
        """Wait for the batch in flight; count and acknowledge it (splitting it when it is refused for what it
        holds, dead-lettering what is refused), or rewind and raise when a retry may cure the failure."""
        assert self._inflight is not None
        pending, sent, last = self._inflight
        self._inflight = None
        try:
            result = pending.result()
        except Exception as error:
            if verdict(error) == RETRY:
                self._rewind()
                raise
            try:
                stored, duplicates, refused = self._isolate(_events_of(sent), error)
            except Exception:
                self._rewind()
                raise
            cause: BaseException | str = error
        else:
            stored, duplicates, refused = _counts(result, _events_of(sent) if result.conflicts else [])
            cause = f"{len(refused)} events conflicted: {result.conflicts[0]}" if refused else ""
        self.stored += stored
        self.duplicates += duplicates
        self._refuse(refused, len(refused), cause)
        self.done_seq = _seq(last[2], self.done_seq)
        self._ack(last[0], last[1])

    def _isolate(
        self, events: list[dict[str, Any]], error: BaseException
    ) -> tuple[int, int, list[tuple[str, dict[str, Any], dict[str, Any]]]]:
        """A batch was refused: resend it in halves, and halves of the refused halves, until every refused event
        stands alone; the rest is stored. (A refusal of where the batch goes refuses it whole, unsplit.) Returns
        what `_counts` does, for the whole batch. Raises, to retry the whole batch later, on a failure a retry may
        cure: the parts already stored then come back as duplicates, never stored twice (and counted once)."""
        stored = duplicates = 0
        refused: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        todo: list[tuple[list[dict[str, Any]], BaseException]] = [(events, error)]
        experiment_id = self.experiment_id
        assert experiment_id is not None
        while todo:
            chunk, failure = todo.pop()
            if verdict(failure) == REFUSE or len(chunk) == 1:
                refused.extend(("metric", event, error_info(failure)) for event in chunk)
                continue
            middle = len(chunk) // 2
            failed: list[tuple[list[dict[str, Any]], BaseException]] = []
            for part in (chunk[:middle], chunk[middle:]):  # in log order
                try:
                    result = self.client.ingest(experiment_id, part)
                except Exception as part_error:
                    if verdict(part_error) == RETRY:
                        raise
                    failed.append((part, part_error))
                else:
                    part_stored, part_duplicates, part_refused = _counts(result, part)
                    stored += part_stored
                    duplicates += part_duplicates
                    refused.extend(part_refused)
            todo.extend(reversed(failed))  # the first refused half is split first
        return stored, duplicates, refused

    def _refuse(
        self,
        entries: list[tuple[str, dict[str, Any], dict[str, Any]]],
        count: int,
        error: BaseException | str,
    ) -> None:
        """Keep refused records in the dead-letter file (written before the progress that passes them), count
        them as rejected, and say so."""
        if not entries:
            return
        if self.dead_letter is not None:
            self.dead_letter.append(entries, header=self.header, experiment_id=self.experiment_id)
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append((self.rejected, _reason(error)))
        self.rejected += count
        self.last_error = _reason(error)
        where = self.dead_letter.path if self.dead_letter is not None else "nowhere (durability='memory')"
        logger.warning(
            "tally: %d events of run %r could not be stored (%s); kept in %s",
            count,
            self._run_name(),
            error,
            where,
        )

    def _run_name(self) -> str | None:
        header = self.header or {}
        return header.get("name") or self.experiment_id

    def _rewind(self) -> None:
        """A send failed and will be retried: read the same records again next time."""
        self._inflight = None
        self._buffer.clear()
        self._read_segment, self._read_offset = self.segment, self.offset

    def _send_other(self, experiment_id: str, run_key: str, payload: Any) -> None:
        kind = payload[0]
        record: dict[str, Any] = {}
        try:
            if kind == KIND_ANNOTATION:
                try:
                    _, seq, text, step, stamp, metadata = payload
                    record = {
                        "text": text,
                        "step": step,
                        "timestamp": datetime.fromtimestamp(round(stamp, 3), UTC),
                        "metadata": metadata,
                        "client_event_id": f"{run_key}.{seq:x}.a",
                    }
                except Exception as error:
                    raise ValueError(f"unreadable spool record: {error!r}") from None
                self.client.annotate(experiment_id, **record)
                self.stored += 1
            elif kind == KIND_CONFIG:
                try:
                    _, seq, config, tags = payload
                    record = {"config": config, "tags": tags}
                except Exception as error:
                    raise ValueError(f"unreadable spool record: {error!r}") from None
                self.client.merge_config(experiment_id, config, tags)
                self.stored += 1
            elif kind == KIND_CAPTURE:
                try:
                    self.client.set_capture(experiment_id, payload[2])
                except Exception as error:
                    if verdict(error) == RETRY:
                        raise
                    # Not an event of the caller's: a refusal is said, never counted against the run.
                    logger.warning("tally: the run's capture was not stored: %s", error)
            elif kind == KIND_ARTIFACT:
                try:
                    _, seq, name, where, size, sha256, stamp = payload
                    record = {"name": name, "path": where, "size_bytes": size, "sha256": sha256}
                except Exception as error:
                    raise ValueError(f"unreadable spool record: {error!r}") from None
                copy = Path(where) if self.directory is None else self.directory / where
                if copy.exists():  # else stored before a crash: the copy goes only once the upload is stored
                    self.client.upload_artifact(
                        experiment_id,
                        copy,
                        name=name,
                        sha256=sha256,
                        idempotency_key=f"{run_key}.{seq:x}.artifact",
                    )
                    copy.unlink(missing_ok=True)
                self.stored += 1
            elif kind == KIND_END and self.superseded:
                pass  # an earlier process's end: the resumed run that replays it sets the final status
            elif kind == KIND_END:
                try:
                    self.client.set_status(experiment_id, payload[2])
                except ConflictError as error:
                    if error.code != "invalid_transition":  # already final: set before a crash or by hand
                        raise
        except Exception as error:
            if verdict(error) == RETRY:
                self._rewind()
                raise
            if kind == KIND_ANNOTATION:
                if record:
                    record["timestamp"] = rfc3339(payload[4])
                else:
                    record = {"payload": repr(payload)}
                self._refuse([("annotation", record, error_info(error))], 1, error)
            elif kind == KIND_CONFIG:
                self._refuse([("config", record or {"payload": repr(payload)}, error_info(error))], 1, error)
            elif kind == KIND_ARTIFACT:
                self._refuse(
                    [("artifact", record or {"payload": repr(payload)}, error_info(error))], 1, error
                )
            else:
                self.last_error = str(error)
                logger.warning("tally: the server refused a record of the run: %s", error)

    def _finish(self, segment: int, end: int) -> None:
        self._ack(segment, end)
        self.progress.append([KIND_FINISHED])
        self.finished = True

    def close(self) -> None:
        self._worker.stop()
        self.progress.close()
        if self.lock is not None:
            self.lock.release()

    def remove_if_done(self) -> bool:
        """Delete the spool when its end is sent (or nothing is left of it); True if it was deleted."""
        if self.directory is None or not self.finished:
            return False
        self.close()
        remove_spool(self.directory)
        return True


def _counts(
    result: Any, events: list[dict[str, Any]]
) -> tuple[int, int, list[tuple[str, dict[str, Any], dict[str, Any]]]]:
    """What an ingest answer says of `events`: stored (duplicates included), duplicates, and the conflicts as
    dead-letter entries."""
    refused = [
        ("metric", events[c.index], {**error_info(c.message), "code": "conflict"})
        for c in result.conflicts or ()
    ]
    return result.accepted + result.duplicates, result.duplicates, refused


def _log_events(payload: Any, run_key: str) -> list[dict[str, Any]]:
    """The metric events of one `run.log()` record; raises on a record that is not one."""
    kind, seq, step, stamp, labels, values = payload
    if kind != KIND_LOG or not isinstance(values, dict):
        raise ValueError("not a log record")
    when = rfc3339(stamp)
    prefix = f"{run_key}.{seq:x}."
    events = []
    for index, (name, value) in enumerate(values.items()):
        event = {"name": name, "value": value, "timestamp": when, "client_event_id": prefix + str(index)}
        if step is not None:
            event["step"] = step
        if labels:
            event["metadata"] = labels
        events.append(event)
    return events


def _event_count(payload: Any) -> int:
    """How many events `run.log()` counted for a record (1 when that cannot be told)."""
    if isinstance(payload, list) and len(payload) == 6 and isinstance(payload[5], dict):
        return len(payload[5]) or 1
    return 1


def _seq(payload: Any, default: int) -> int:
    if isinstance(payload, list) and len(payload) > 1 and type(payload[1]) is int:
        return max(payload[1], default)
    return default


def _header(store: Store) -> dict[str, Any] | None:
    header = read_header(store)
    return None if header is None else dict(header)


class Sender:
    """The background thread: drains the leftover spools first, then the run's own, retrying with backoff
    (no time limit while the process lives). `flush(timeout)` waits until the run's own spool is stored.
    `on_stored` is called (on the thread) after each unit of work and each failure: a sender process publishes
    its state then (`_sender_child`)."""

    needs_client = True
    """It sends through the caller's client: a run whose client is closed cannot send."""

    def __init__(
        self,
        own: Drain,
        *,
        leftovers: list[Callable[[], Drain | None]] | None = None,
        poll_interval: float = 0.05,
        fsync_interval: float | None = None,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self.own = own
        self._leftovers: list[Drain | Callable[[], Drain | None]] = list(leftovers or [])
        self.poll_interval = poll_interval
        self.fsync_interval = fsync_interval
        self.failures = 0
        self.last_error: str | None = None
        self.passes = 0
        """Passes of the loop started so far."""
        self.idle_pass = 0
        """The last pass (by its number) that found nothing to send, and no error."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._on_stored = on_stored
        self._thread = threading.Thread(target=self._run, name="tally-run-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def refresh(self) -> None:
        """(The drain's counts are this process's own: nothing to read. A `SenderProcess` reads its child's.)"""

    def _run(self) -> None:
        lower_thread_priority()
        last_sync = 0.0

        while not self._stop.is_set():
            self.passes += 1
            this_pass = self.passes
            drain = self._current()
            try:
                worked = drain.step() if drain is not None else False
                self.last_error = None  # the server answered: the outage, if any, is over
            except Exception as error:
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {error}"
                if self._on_stored is not None:
                    self._on_stored()
                delay = backoff_delay(min(self.failures, 10), rand=0.5 + random.random() / 2)
                logger.info("tally: sending the run failed (%s); retrying in %.1f s", error, delay)
                # A flush (or stop) cuts the wait short: one attempt at once for a caller who is waiting.
                self._wake.wait(delay)
                self._wake.clear()
                continue
            if drain is not None and drain is not self.own and drain.blocked is not None:
                drain.close()  # it cannot be sent: left whole, for `tally sync` to say why
                self._leftovers.pop(0)
                continue
            if drain is not None and drain is not self.own and (drain.finished or not worked):
                drain.finished = True  # no one writes a leftover: caught up is done
                drain.remove_if_done()
                self._leftovers.pop(0)
                continue
            if worked:
                self.failures = 0
                with self._progress:
                    self._progress.notify_all()
                if self._on_stored is not None:
                    self._on_stored()
            if not worked:
                self.idle_pass = this_pass
            if self.fsync_interval is not None and time.monotonic() - last_sync >= self.fsync_interval:
                last_sync = time.monotonic()
                self.own.store.sync()
                self.own.progress.sync()
            if not worked:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    def _current(self) -> Drain | None:
        while self._leftovers:
            head = self._leftovers[0]
            if isinstance(head, Drain):
                return head
            drain = head()
            if drain is None:
                self._leftovers.pop(0)
                continue
            self._leftovers[0] = drain
            return drain
        return self.own

    def wait(self, caught_up: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until `caught_up()` or `timeout` seconds; True when caught up."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        with self._progress:
            while not caught_up():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if not self._thread.is_alive():
                    return caught_up()
                self._progress.wait(0.05 if remaining is None else min(remaining, 0.05))
        return True

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the thread; True if it ended (it may be inside a request that hangs: it is a daemon)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with contextlib.suppress(Exception):
            self.own.store.sync()
        return not self._thread.is_alive()
