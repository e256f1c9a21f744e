"""Artifact transfers of `AsyncTally`: the upload body, which reads its file again from the start on every attempt
(so the retry transport can resend it whole, and nothing is held beyond one chunk), and the file-like reader that
`client.artifacts.open(...)` answers, which fetches byte ranges. The upload body also streams a run's encoded
batches in their parts (`tally._chunked`).

Written once in async form; `scripts/unasync.py` derives `tally/_sync/` from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from tally._artifacts import OCTET_STREAM, transfer_timeout

if TYPE_CHECKING:
    from tally._types import Artifact

    from ._client import AsyncCore

__all__ = ["AsyncArtifactReader", "AsyncUploadBody"]


class BodySource(Protocol):
    """What a streamed body is read from: a file to upload (`tally._artifacts.FileSource`) or a batch's parts
    (`tally._chunked.ChunkedBody`)."""

    @property
    def size(self) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...


class AsyncUploadBody:
    """A streamed request body for httpx, sent with a Content-Length (not chunked on the wire): not a generator,
    so it can be iterated once per attempt, each time from the source's first byte."""

    def __init__(self, source: BodySource, content_type: str = OCTET_STREAM) -> None:
        self.source = source
        self.size = source.size
        self.content_type = content_type

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.source.chunks():
            yield chunk


class AsyncArtifactReader:
    """A read-only, seekable file over an artifact's content: `read(n)` fetches the bytes it needs with one ranged
    request (`Range: bytes=...`), so any part of a large file is read without downloading the rest. Use it as a
    context manager (`async with client.artifacts.open(experiment_id, artifact_id) as f`), which reads the
    artifact's size first; read in large pieces (each read is one request)."""

    def __init__(
        self, core: AsyncCore, experiment_id: str, artifact_id: str, options: Mapping[str, Any]
    ) -> None:
        self._core = core
        self._experiment_id = experiment_id
        self._artifact_id = artifact_id
        self._options = options
        self._position = 0
        self.artifact: Artifact | None = None
        self.closed = False

    async def __aenter__(self) -> AsyncArtifactReader:
        from tally_api.api.artifacts import get_artifact

        from tally._decoders import Decoders

        operation = get_artifact._get_kwargs(self._experiment_id, self._artifact_id)
        self.artifact = await self._core.request(operation, Decoders.artifact, self._options)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.closed = True

    @property
    def size(self) -> int:
        if self.artifact is None:
            raise ValueError("open the reader first: use it in a `with` block")
        return self.artifact.size_bytes

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to `offset` from the start (whence 0), the current position (1) or the end (2)."""
        base = {0: 0, 1: self._position, 2: self.size}.get(whence)
        if base is None:
            raise ValueError(f"whence must be 0, 1 or 2, not {whence!r}")
        if base + offset < 0:
            raise ValueError("cannot seek before the start of the artifact")
        self._position = base + offset
        return self._position

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    async def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes from the current position (all that is left when negative); b"" at the end."""
        if self.closed:
            raise ValueError("I/O operation on a closed artifact reader")
        end = self.size if size is None or size < 0 else min(self.size, self._position + size)
        if end <= self._position:
            return b""
        from tally_api.api.artifacts import download_artifact

        options = dict(self._options)
        options["extra_headers"] = {
            **(options.get("extra_headers") or {}),
            "Range": f"bytes={self._position}-{end - 1}",
        }
        options.setdefault("timeout", transfer_timeout(self._core.settings.timeout))
        operation = download_artifact._get_kwargs(self._experiment_id, self._artifact_id)
        parts: list[bytes] = []
        async with self._core.stream(operation, options, accept=OCTET_STREAM) as response:
            async for chunk in response.aiter_bytes():
                parts.append(chunk)
        data = b"".join(parts)
        self._position += len(data)
        return data
