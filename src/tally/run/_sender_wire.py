"""What a run's training process and its sender process (`_sender_process`, `_sender_child`) say to each other: the
one message on the child's stdin, and the name of the state file the child publishes.

A module of its own, importing nothing of the client's: the child reads its instructions and starts making the
parent's next segments ready (`_spool.Preparer`) before it imports a client, which takes it 100-200 ms. Until
2026-12-04 it imported the client first, and at the bench's pace the parent made every segment of those first
100-200 ms itself, on the training thread: 15-17 `log()` calls of 1-5 ms in each process's first tenth of a
second. So the message holds only builtin values; the client's settings inside it are pickled on their own
(`client_spec`), since unpickling them imports httpx and the client's modules."""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any

__all__ = ["LENGTH", "STATE_FILE", "client_spec", "encode_message", "read_message"]

STATE_FILE = "sender.state"
"""The child's last published state, in the spool directory (JSON, replaced whole: `os.replace`)."""
LENGTH = struct.Struct(">I")
"""The message's length, before it."""


def encode_message(message: dict[str, Any], client: dict[str, Any]) -> bytes:
    """The child's instructions: `message` (builtin values only: see the module's docstring) and the settings
    of the client it makes (`tally._sender_spec.process_spec`)."""
    data = pickle.dumps({**message, "client": pickle.dumps(client)})
    return LENGTH.pack(len(data)) + data


def read_message() -> dict[str, Any]:
    """The parent's instructions, read from stdin (in the child)."""

    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = os.read(0, size - len(data))
            if not chunk:
                raise SystemExit("tally: the run's sender process got no instructions (its parent is gone)")
            data += chunk
        return data

    (size,) = LENGTH.unpack(exactly(LENGTH.size))
    # Pickled by our own parent and read from a pipe only it holds.
    message: dict[str, Any] = pickle.loads(exactly(size))  # noqa: S301
    return message


def client_spec(message: dict[str, Any]) -> dict[str, Any]:
    """The client's settings in `message` (unpickling them imports httpx: the client's RetryPolicy, httpx.Timeout,
    httpx.Limits and httpx.Proxy have no JSON form)."""
    spec: dict[str, Any] = pickle.loads(message["client"])  # noqa: S301 - see read_message
    return spec
