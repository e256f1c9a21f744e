"""The sender process of a run started with `sender="process"` (`_sender_process` says why and how): follows the
spool the training process writes, sends it with the same `Sender` and `Drain` a thread sender uses, and
publishes what it has stored for the parent to read.

Run by the parent only, as `python -m tally._sender_main` (the client layer's entry point: this package never
imports a client, so the client is made there): its first message on stdin says what to send and through which
client (see `SenderProcess`)."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tally._logging import logger

from ._port import SenderPort
from ._run import _leftover
from ._sender import Drain, Sender
from ._sender_wire import STATE_FILE
from ._spool import FileStore, Preparer

POLL_SECONDS = 0.05
"""How often the child looks at its control line and publishes its state (and so the slowest a flush learns)."""


class FollowerStore(FileStore):
    """The spool's segments as the sender process sees them: read (and deleted once stored) while another process
    writes them. `sync()` (durability="power") flushes the newest segment's pages, which the writer dirtied
    through its memory map, to the disk: fsync works on the file, whichever process mapped it."""

    def sync(self) -> None:
        segments = self.segments()
        if not segments:
            return
        try:
            fd = os.open(self.path(segments[-1]), os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class ParentWriter:
    """What a `Drain` asks of the run's writer, for a writer in the parent process: whether it has stopped
    writing (`closed`: the run's end is in the spool, or the parent is gone), and `release(n)` once segment `n`
    is stored (deleted here; the parent's `SpoolWriter` notices when it next counts its spool against the cap)."""

    racing = True
    """Its copies into the segment race with this process's reads (`decode_records`)."""

    def __init__(self, store: FileStore) -> None:
        self.store = store
        self.closed = False

    def release(self, number: int) -> None:
        self.store.delete(number)


def _state(drain: Drain, sender: Sender) -> bytes:
    """What the parent's `SenderProcess.refresh` reads."""
    state = {
        "experiment_id": drain.experiment_id,
        "stored": drain.stored,
        "rejected": drain.rejected,
        "duplicates": drain.duplicates,
        "reasons": drain.reasons,
        "last_error": drain.last_error,
        "blocked": drain.blocked,
        "finished": drain.finished,
        "done_seq": drain.done_seq,
        "sender_error": sender.last_error,
    }
    return json.dumps(state).encode()


def _publish(directory: Path, data: bytes) -> bool:
    """Replace the state file whole, so that the parent never reads half of one; False when the disk refused (it
    is full: the parent keeps the last state until the next try, since this process frees space as it stores)."""
    temporary = directory / (STATE_FILE + ".tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, "short write")
        finally:
            os.close(fd)
        os.replace(temporary, directory / STATE_FILE)
    except OSError as error:
        logger.debug("tally: publishing the sender's state failed: %s", error)
        return False
    return True


def serve(message: dict[str, Any], port: SenderPort, preparer: Preparer) -> None:
    """Send the spool `message` names through `port` until the run's end is stored, the parent says stop, or
    the parent is gone and what it wrote is sent (or the grace is over)."""
    directory = Path(message["directory"])
    store = FollowerStore(directory)
    writer = ParentWriter(store)
    drain = Drain(store, port, directory=directory, writer=writer)
    experiment_id = message["experiment_id"]
    leftovers: list[Callable[[], Drain | None]] = [
        functools.partial(_leftover, Path(path), port, experiment_id) for path in message["leftovers"]
    ]
    published = threading.Lock()
    last: list[bytes] = [b""]
    news: int | None = message.get("news_fd")
    if news is not None:
        os.set_blocking(news, False)

    def publish() -> None:
        with published:
            data = _state(drain, sender)
            if data != last[0] and _publish(directory, data):
                last[0] = data
                if news is not None:
                    # A byte for the parent's `wait`; a full pipe already holds one, a gone parent reads none.
                    with contextlib.suppress(OSError):
                        os.write(news, b"s")

    sender = Sender(drain, leftovers=leftovers, fsync_interval=message["fsync_interval"], on_stored=publish)
    publish()
    sender.start()
    gone_at: float | None = None
    gone_pass = 0
    grace = float(message["grace"])
    while True:
        if gone_at is None:
            readable, _, _ = select.select([0], [], [], POLL_SECONDS)
            data = os.read(0, 64) if readable else b"-"
            if b"q" in data:
                break
            if b"w" in data:
                sender.wake()
            if not data:  # the parent is gone: send what it wrote, then leave
                gone_at = time.monotonic()
                gone_pass = sender.passes  # a pass that starts after this one sees everything it wrote
                writer.closed = True
                sender.wake()
        else:
            time.sleep(POLL_SECONDS)
        publish()
        if drain.finished:
            break
        if gone_at is not None and (sender.idle_pass > gone_pass or time.monotonic() - gone_at > grace):
            break
    preparer.stop()
    sender.stop()
    publish()
    drain.close()
    port.close()
