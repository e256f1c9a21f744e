"""The sender alone, with a stand-in client (no HTTP): order, exactly-once ids across failures, rejections,
annotations and the end record, and pipelining that never has two batches in flight."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from tally import APIConnectionError, BadRequestError, IngestResult
from tally.run._format import frame
from tally.run._sender import Drain, Sender
from tally.run._spool import MemoryStore, SpoolWriter


class FakeServer:
    """Stores events by `client_event_id` like the server; can fail the next calls, or refuse a batch."""

    def __init__(self, *, fail: int = 0, refuse_batch: int | None = None) -> None:
        self.fail = fail
        self.refuse_batch = refuse_batch
        self.calls = 0
        self.stored: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.annotations: list[str] = []
        self.statuses: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.client = SimpleNamespace(
            metrics=SimpleNamespace(ingest=self.ingest),
            experiments=SimpleNamespace(create=self.create, update_status=self.update_status),
            annotations=SimpleNamespace(create=self.annotate),
        )

    def create(self, name: str, **kwargs: Any) -> Any:
        return SimpleNamespace(id="exp_fake")

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
            if self.refuse_batch == self.calls:
                raise BadRequestError(
                    "refused",
                    status_code=400,
                    code="invalid_request",
                    request_id=None,
                    method="POST",
                    url="/v1/metrics",
                    details=None,
                )
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

    def update_status(self, experiment_id: str, status: str) -> None:
        self.statuses.append(status)


def spool(steps: int, *, annotate_at: int | None = None) -> tuple[SpoolWriter, int]:
    writer = SpoolWriter(MemoryStore(), {"run_key": "rk", "name": "fake", "experiment_id": None})
    seq = 0
    for step in range(steps):
        seq += 1
        writer.append(frame([1, seq, step, 0.0, None, {f"m{i}": float(step) for i in range(10)}]), 10)
        if step == annotate_at:
            seq += 1
            writer.append(frame([2, seq, "note", step, 0.0, None]), 1)
    seq += 1
    writer.append(frame([3, seq, "completed"]), 0)
    return writer, seq


def drain_all(server: FakeServer, writer: SpoolWriter, last_seq: int) -> Drain:
    drain = Drain(writer.store, server.client, directory=None, writer=writer)  # type: ignore[arg-type]
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


def test_a_refused_batch_is_counted_and_the_run_goes_on() -> None:
    server = FakeServer(refuse_batch=2)
    writer, last = spool(3000)
    drain = drain_all(server, writer, last)
    assert drain.rejected == 10_000
    assert drain.stored == 20_000
    assert drain.last_error is not None
    assert "refused" in drain.last_error
    assert server.statuses == ["completed"]
