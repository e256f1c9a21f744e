"""A request body held as a list of parts, never joined into one `bytes`: the batches a run's sender encodes.

A batch of 10,000 events is about 1.4 MB of JSON. Joined, it is one large allocation per batch, and the joins
themselves hold two or three copies at once while the previous batch is still in flight. glibc then keeps the
freed blocks: it raises its mmap threshold to the largest block freed, so every later batch comes from the heap,
which it rarely gives back. Logging 1,000,000 values grew the training process by about 14 MiB that way (peak RSS,
`make bench`); sent in parts of at most `PART_BYTES`, about 8.5 (and about 7.3 once each response, and with it its
request's body, is freed as soon as it is read: `tally._response_cycle`).

The parts are sent as they are (`tally._async._artifact_io.AsyncUploadBody` streams them with a Content-Length, so
the request is not chunked on the wire), and can be sent again whole by a retry.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["JSON", "PART_BYTES", "ChunkedBody", "JsonArrayBuilder"]

JSON = "application/json"

PART_BYTES = 64 << 10
"""The largest part: below glibc's default mmap threshold (128 KiB), and few enough sends (about 22 a batch)."""


class ChunkedBody:
    """A body's parts, in order, and their total size."""

    __slots__ = ("parts", "size")

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.size = sum(map(len, parts))

    def chunks(self) -> Iterator[bytes]:
        """The parts to send, from the first (every attempt calls this again)."""
        return iter(self.parts)

    def join(self) -> bytes:
        """The whole body at once: only to read back what a refused batch held."""
        return b"".join(self.parts)


class JsonArrayBuilder:
    """`<head>member,member,...<tail>` from encoded members as they come, cut into parts of about `PART_BYTES`, so
    no copy of the whole body is ever made."""

    __slots__ = ("_empty", "_parts", "_pending", "_tail")

    def __init__(self, head: bytes, tail: bytes) -> None:
        self._parts: list[bytes] = []
        self._pending = bytearray(head)
        self._tail = tail
        self._empty = True

    def add(self, member: bytes) -> None:
        pending = self._pending
        if not self._empty:
            pending += b","
        self._empty = False
        pending += member
        if len(pending) >= PART_BYTES:
            self._parts.append(bytes(pending))
            pending.clear()

    def finish(self) -> ChunkedBody:
        self._pending += self._tail
        self._parts.append(bytes(self._pending))
        self._pending = bytearray()
        return ChunkedBody(self._parts)
