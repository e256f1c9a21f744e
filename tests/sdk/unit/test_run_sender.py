"""The sender alone, with a stand-in client (no HTTP): order, exactly-once ids across failures, refusals (split
until isolated, or whole; dead-lettered, never blocking what follows), annotations and the end record, and
pipelining that never has two batches in flight."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from tally import APIConnectionError, BadRequestError, EventConflict, IngestResult, NotFoundError
from tally._chunked import ChunkedBody
from tally.run._format import frame
from tally.run._port import SenderPort
from tally.run._sender import Drain, Sender, _events_of, _log_events, _log_fragment
from tally.run._spool import FileStore, MemoryStore, SpoolWriter, Store


class FakeServer:
    """Stores events by `client_event_id` like the server; can fail the next calls, or refuse a batch."""

    def __init__(
        self,
        *,
        fail: int = 0,
        refuse_batch: int | None = None,
        bad: Callable[[dict[str, Any]], bool] | None = None,
        gone_after: int | None = None,
        fail_during_split: int = 0,
    ) -> None:
        self.fail = fail
        self.refuse_batch = refuse_batch
        self.bad = (
            bad  # a 400 for the whole batch when one of its events is bad, like the server's validation
        )
        self.gone_after = gone_after  # a 404 for every call after this many: the experiment was deleted
        self.fail_during_split = fail_during_split  # connection errors for calls of fewer than 10,000 events
        self.calls = 0
        self.stored: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.annotations: list[str] = []
        self.statuses: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.client: SenderPort = self  # the sender sees only the port (tally.run._port)
        self.offline = False
        self.is_closed = False

    def create_experiment(self, name: str, **kwargs: Any) -> str:
        return "exp_fake"

    def close(self) -> None:
        self.is_closed = True

    def last_step(self, experiment_id: str) -> int | None:
        return None

    def find_experiments(self, **kwargs: Any) -> list[str]:
        return ["exp_fake"]

    def reopen(self, experiment_id: str, **kwargs: Any) -> None:
        self.statuses.append("running")

    def merge_config(self, experiment_id: str, config: Any, tags: Any) -> None:
        return None

    def set_capture(self, experiment_id: str, captured: Any) -> None:
        return None

    def ingest(self, experiment_id: str, events: list[dict[str, Any]]) -> IngestResult:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.calls += 1
            if self.fail:
                self.fail -= 1
                # Half the failures lose the answer after "committing", like a dropped response.
                if self.fail % 2:
                    self._store(events)
                raise APIConnectionError("connection reset", method="POST", url="/v1/metrics")
            if self.refuse_batch == self.calls or (self.bad and any(self.bad(e) for e in events)):
                raise BadRequestError(
                    "refused",
                    status_code=400,
                    code="invalid_request",
                    request_id="req_1",
                    method="POST",
                    url="/v1/metrics",
                    details=None,
                )
            if self.gone_after is not None and self.calls > self.gone_after:
                raise NotFoundError(
                    "no such experiment",
                    status_code=404,
                    code="not_found",
                    request_id="req_2",
                    method="POST",
                    url="/v1/metrics",
                    details=None,
                )
            if self.fail_during_split and len(events) < 10_000:
                self.fail_during_split -= 1
                raise APIConnectionError("connection reset", method="POST", url="/v1/metrics")
            duplicates = self._store(events)
            return IngestResult(accepted=len(events) - duplicates, duplicates=duplicates, conflicts=())
        finally:
            with self.lock:
                self.in_flight -= 1

    def _store(self, events: list[dict[str, Any]]) -> int:
        duplicates = 0
        for event in events:
            if event["client_event_id"] in self.stored:
                duplicates += 1
            else:
                self.stored[event["client_event_id"]] = event
                self.order.append(event["client_event_id"])
        return duplicates

    def annotate(self, experiment_id: str, text: str, **kwargs: Any) -> None:
        self.annotations.append(text)

    def set_status(self, experiment_id: str, status: str) -> None:
        self.statuses.append(status)


def spool(
    steps: int, *, annotate_at: int | None = None, annotation_metadata: Any = None, store: Store | None = None
) -> tuple[SpoolWriter, int]:
    if isinstance(store, FileStore):
        store.directory.mkdir()
    writer = SpoolWriter(store or MemoryStore(), {"run_key": "rk", "name": "fake", "experiment_id": None})
    seq = 0
    for step in range(steps):
        seq += 1
        writer.append(frame([1, seq, step, 0.0, None, {f"m{i}": float(step) for i in range(10)}]), 10)
        if step == annotate_at:
            seq += 1
            writer.append(frame([2, seq, "note", step, 0.0, annotation_metadata]), 1)
    seq += 1
    writer.append(frame([3, seq, "completed"]), 0)
    return writer, seq


def drain_all(server: FakeServer, writer: SpoolWriter, last_seq: int, directory: Path | None = None) -> Drain:
    drain = Drain(writer.store, server.client, directory=directory, writer=writer)
    sender = Sender(drain, poll_interval=0.01)
    sender.start()
    try:
        assert sender.wait(lambda: drain.done_seq >= last_seq, timeout=60)
    finally:
        sender.stop()
        drain.close()
    return drain


def test_everything_is_sent_once_in_order_with_the_end_last() -> None:
    server = FakeServer()
    writer, last = spool(3000, annotate_at=1500)
    drain = drain_all(server, writer, last)
    assert len(server.stored) == 30_000
    steps = [server.stored[cid].get("step") for cid in server.order]
    assert steps == sorted(steps)
    assert server.annotations == ["note"]
    assert server.statuses == ["completed"]
    assert drain.finished
    assert (drain.stored, drain.rejected) == (30_001, 0)
    assert server.max_in_flight == 1


def test_failures_are_retried_with_the_same_ids_and_nothing_is_stored_twice() -> None:
    server = FakeServer(fail=3)
    writer, last = spool(2500)
    drain = drain_all(server, writer, last)
    assert len(server.stored) == 25_000
    assert len(server.order) == len(set(server.order))
    assert drain.duplicates > 0  # the batch "committed" before its answer was lost came back as duplicates
    assert drain.stored == 25_000


def test_a_refused_batch_is_split_until_the_refused_events_stand_alone(tmp_path: Path) -> None:
    server = FakeServer(bad=lambda event: event.get("step") in (17, 2500) and event["name"] == "m3")
    writer, last = spool(3000, store=FileStore(tmp_path / "run"))
    drain = drain_all(server, writer, last, directory=tmp_path / "run")
    assert (drain.stored, drain.rejected) == (29_998, 2)
    assert len(server.stored) == 29_998
    assert server.calls < 80  # halving: about 2 log2(10,000) calls for each refused event, not one per event
    assert server.statuses == ["completed"]
    assert drain.last_error is not None
    assert "refused" in drain.last_error
    letters = [json.loads(line) for line in (tmp_path / "run.dead-letter.jsonl").read_text().splitlines()]
    assert [(e["kind"], e["record"]["step"], e["record"]["name"]) for e in letters] == [
        ("metric", 17, "m3"),
        ("metric", 2500, "m3"),
    ]
    assert letters[0]["error"] == {
        "status": 400,
        "code": "invalid_request",
        "message": "refused",
        "request_id": "req_1",
    }
    assert letters[0]["run_key"] == "rk"
    assert letters[0]["experiment_id"] == "exp_fake"


def test_a_refusal_of_where_the_batch_goes_refuses_it_whole_without_splitting() -> None:
    server = FakeServer(gone_after=1)
    writer, last = spool(3000)
    drain = drain_all(server, writer, last)
    assert (drain.stored, drain.rejected) == (10_000, 20_000)
    assert server.calls == 3  # one call per batch: a split would meet the same 404
    assert drain.finished


def test_a_retryable_failure_while_splitting_retries_and_stores_nothing_twice() -> None:
    server = FakeServer(bad=lambda event: event.get("step") == 1234, fail_during_split=3)
    writer, last = spool(3000)
    drain = drain_all(server, writer, last)
    assert len(server.stored) == 29_990
    assert len(server.order) == len(set(server.order))
    assert (drain.stored, drain.rejected) == (29_990, 10)


def test_an_annotation_the_sdk_refuses_at_send_time_never_blocks_what_follows(tmp_path: Path) -> None:
    def annotate(experiment_id: str, text: str, **kwargs: Any) -> None:
        if kwargs["metadata"]:
            raise ValueError("metadata is 9011 bytes as JSON, over the 8192-byte limit")
        server.annotations.append(text)

    server = FakeServer()
    server.annotate = annotate  # type: ignore[method-assign]
    writer, last = spool(
        300, annotate_at=100, annotation_metadata={"blob": "x" * 9000}, store=FileStore(tmp_path / "r")
    )
    drain = drain_all(server, writer, last, directory=tmp_path / "r")
    assert (drain.stored, drain.rejected) == (3000, 1)
    assert server.statuses == ["completed"]
    [letter] = [json.loads(line) for line in (tmp_path / "r.dead-letter.jsonl").read_text().splitlines()]
    assert letter["kind"] == "annotation"
    assert letter["record"]["text"] == "note"
    assert letter["record"]["client_event_id"] == "rk.66.a"
    assert letter["error"]["status"] is None
    assert "8192-byte limit" in letter["error"]["message"]


def test_a_record_that_cannot_be_read_is_dead_lettered_and_the_rest_goes_on(tmp_path: Path) -> None:
    server = FakeServer()
    (tmp_path / "r").mkdir()
    writer = SpoolWriter(FileStore(tmp_path / "r"), {"run_key": "rk", "name": "fake", "experiment_id": None})
    writer.append(frame([1, 1, 0, 0.0, None, {"a": 1.0}]), 1)
    writer.append(frame([1, 2, 1, 1e300, None, {"a": 2.0}]), 1)  # a time no clock can show
    writer.append(frame([1, 3, 2, 0.0, None, {"a": 3.0}]), 1)
    writer.append(frame([3, 4, "completed"]), 0)
    drain = drain_all(server, writer, 4, directory=tmp_path / "r")
    assert (drain.stored, drain.rejected) == (2, 1)
    [letter] = [json.loads(line) for line in (tmp_path / "r.dead-letter.jsonl").read_text().splitlines()]
    assert letter["kind"] == "record"
    assert "unreadable spool record" in letter["error"]["message"]


# ---- the live run's own records, encoded straight into a body (issue 21, "How fast") ------------------------------
class EncodedFakeServer(FakeServer):
    """A port that also takes encoded bodies (`ingest_encoded`), as the client's port does; `conflicts`: ids the
    server already holds with another payload."""

    def __init__(self, *, conflicts: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoded_calls = 0
        self.conflicts = conflicts

    def ingest_encoded(self, experiment_id: str, body: ChunkedBody) -> IngestResult:
        self.encoded_calls += 1
        events = msgspec.json.decode(body.join())["events"]
        clashes = [(i, e) for i, e in enumerate(events) if e["client_event_id"] in self.conflicts]
        if not clashes:
            return self.ingest(experiment_id, events)
        kept = [e for e in events if e["client_event_id"] not in self.conflicts]
        result = self.ingest(experiment_id, kept)
        return IngestResult(
            accepted=result.accepted,
            duplicates=result.duplicates,
            conflicts=tuple(
                EventConflict(
                    index=i, client_event_id=e["client_event_id"], message="used with another payload"
                )
                for i, e in clashes
            ),
        )


def test_the_live_runs_own_records_go_as_encoded_bodies_carrying_the_same_events() -> None:
    """What `run.log()` checked is encoded once, without a dict per event: the server gets exactly the events the
    checked path (`client.ingest`) sends, in order, in batches of at most 10,000."""
    plain, encoded = FakeServer(), EncodedFakeServer()
    for server in (plain, encoded):
        writer, last = spool(3000, annotate_at=1500)
        drain = drain_all(server, writer, last)
        assert (drain.stored, drain.rejected) == (30_001, 0)
    assert encoded.encoded_calls == 4  # 1,510 + 1,490 steps around the annotation: 10k, 5.1k, 10k, 4.9k
    assert encoded.order == plain.order
    assert encoded.stored == plain.stored
    assert encoded.max_in_flight == 1


def test_labels_and_steps_are_encoded_as_the_checked_path_builds_them() -> None:
    record = [1, 0x2A, 7, 1_700_000_000.1234, {"split": "train"}, {"loss": 0.5, "acc": 1}]
    fragment, count = _log_fragment(record, "rk")
    assert count == 2
    assert _events_of(ChunkedBody([b'{"events":[' + fragment + b"]}"])) == _log_events(record, "rk")
    bare = [1, 0x2B, None, 0.0, None, {"loss": 0.25}]
    fragment, _ = _log_fragment(bare, "rk")
    assert _events_of(ChunkedBody([b'{"events":[', fragment, b"]}"])) == _log_events(bare, "rk")
    assert _log_fragment([1, 0x2C, 0, 0.0, None, {}], "rk") == (b"", 0)


def test_an_encoded_batch_refused_is_split_and_its_conflicts_are_dead_lettered(tmp_path: Path) -> None:
    server = EncodedFakeServer(
        bad=lambda event: event.get("step") == 17 and event["name"] == "m3", conflicts=frozenset({"rk.7d1.4"})
    )
    writer, last = spool(3000, store=FileStore(tmp_path / "run"))
    drain = drain_all(server, writer, last, directory=tmp_path / "run")
    assert (drain.stored, drain.rejected) == (29_998, 2)
    letters = [json.loads(line) for line in (tmp_path / "run.dead-letter.jsonl").read_text().splitlines()]
    assert sorted((e["record"]["step"], e["record"]["name"]) for e in letters) == [(17, "m3"), (2000, "m4")]
    assert {e["error"].get("code") for e in letters} == {"invalid_request", "conflict"}
