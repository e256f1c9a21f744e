"""`LoopPort`: the `SenderPort` of an `AsyncTally`'s run, driven from the run's sender thread (`tally._run_ports`
says why it exists). Its own module, imported only for an async client's run, so a `Tally`'s run never imports
asyncio (about 1 MiB of the training process and 10 ms of its first `client.run()`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tally._async._run_port import AsyncRunPort
from tally._chunked import ChunkedBody
from tally._logging import logger
from tally._types import IngestResult

if TYPE_CHECKING:
    from tally._async._client import AsyncTally

__all__ = ["CLOSE_TIMEOUT", "LoopPort"]

T = TypeVar("T")

CLOSE_TIMEOUT = 5.0
"""Seconds `LoopPort.close()` waits for its client to close (a request that never ends must not hang exit)."""


class LoopPort:
    """A `SenderPort` over a sibling of an `AsyncTally` (`AsyncTally._sibling`), driven from any thread: each call
    runs on the port's own event loop (a daemon thread, so a request that never ends cannot hold up the
    interpreter's exit)."""

    def __init__(self, client: AsyncTally) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tally-run-loop", daemon=True)
        self._thread.start()
        self._closed = False

        async def build() -> AsyncRunPort:  # on the loop: a transport may want a running loop to start
            return AsyncRunPort(client._sibling(), owned=True)

        self._port = self._call(build())

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def offline(self) -> bool:
        return self._port.offline

    @property
    def is_closed(self) -> bool:
        return self._closed or self._port.is_closed

    def create_experiment(
        self,
        name: str,
        *,
        description: str | None,
        metadata: Any,
        folder_id: str | None,
        tags: list[str] | None = None,
        idempotency_key: str,
        patient: bool = True,
        group: str | None = None,
    ) -> str:
        return self._call(
            self._port.create_experiment(
                name,
                description=description,
                metadata=metadata,
                folder_id=folder_id,
                tags=tags,
                idempotency_key=idempotency_key,
                patient=patient,
                group=group,
            )
        )

    def find_experiments(
        self, *, experiment_id: str | None, name: str | None, folder_id: str | None, patient: bool = True
    ) -> list[str]:
        return self._call(
            self._port.find_experiments(
                experiment_id=experiment_id, name=name, folder_id=folder_id, patient=patient
            )
        )

    def reopen(self, experiment_id: str, *, patient: bool = True) -> None:
        self._call(self._port.reopen(experiment_id, patient=patient))

    def last_step(self, experiment_id: str) -> int | None:
        return self._call(self._port.last_step(experiment_id))

    def ingest(self, experiment_id: str, events: list[dict[str, Any]]) -> IngestResult:
        return self._call(self._port.ingest(experiment_id, events))

    def ingest_encoded(self, experiment_id: str, body: ChunkedBody) -> IngestResult:
        return self._call(self._port.ingest_encoded(experiment_id, body))

    def annotate(
        self,
        experiment_id: str,
        *,
        text: str,
        step: int | None,
        timestamp: datetime,
        metadata: Any,
        client_event_id: str,
    ) -> None:
        self._call(
            self._port.annotate(
                experiment_id,
                text=text,
                step=step,
                timestamp=timestamp,
                metadata=metadata,
                client_event_id=client_event_id,
            )
        )

    def merge_config(self, experiment_id: str, config: dict[str, Any] | None, tags: list[str] | None) -> None:
        self._call(self._port.merge_config(experiment_id, config, tags))

    def set_capture(self, experiment_id: str, captured: dict[str, Any]) -> None:
        self._call(self._port.set_capture(experiment_id, captured))

    def upload_artifact(
        self, experiment_id: str, path: Path, *, name: str, sha256: str, idempotency_key: str
    ) -> None:
        self._call(
            self._port.upload_artifact(
                experiment_id, path, name=name, sha256=sha256, idempotency_key=idempotency_key
            )
        )

    def set_status(self, experiment_id: str, status: str) -> None:
        self._call(self._port.set_status(experiment_id, status))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._port.close(), CLOSE_TIMEOUT)
        except (
            Exception
        ) as error:  # pragma: no cover - a pool that will not close: the loop stops all the same
            logger.info("tally: closing the run's client failed: %s", error)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CLOSE_TIMEOUT)
            if not self._thread.is_alive():
                self._loop.close()
