"""What an artifact upload reads and a download writes, shared by both clients (no I/O of the network here).

`FileSource` is a file to upload: a path (opened again for every attempt) or a seekable binary file object
(sought back to where it stood for every attempt), with its size and sha256, computed once before the upload
(the server checks the body against that sha256, so a file that changes while it is sent is refused, not stored).
`Partial` writes a download to `<target>.partial`, hashing as it goes, and renames it to the target only when
the sha256 is the one the server gave: a cut or damaged download never leaves a file that looks whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tally._errors import ChecksumMismatchError

__all__ = [
    "CHUNK_BYTES",
    "OCTET_STREAM",
    "FileSource",
    "Partial",
    "file_source",
    "parse_etag",
    "transfer_timeout",
]

CHUNK_BYTES = 1024 * 1024  # what an upload or a download holds in memory at once
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class FileSource:
    """A file to upload (see the module's docstring)."""

    path: Path | None
    fileobj: IO[bytes] | None
    start: int
    size: int
    sha256: str
    name: str

    @contextlib.contextmanager
    def opened(self) -> Iterator[IO[bytes]]:
        """The file at its first byte to send: a path opened anew, a file object sought back."""
        if self.path is not None:
            with self.path.open("rb") as file:
                yield file
            return
        assert self.fileobj is not None
        self.fileobj.seek(self.start)
        yield self.fileobj

    def chunks(self) -> Iterator[bytes]:
        """The bytes to send, `CHUNK_BYTES` at a time, from the start (every attempt calls this again)."""
        with self.opened() as file:
            left = self.size
            while left > 0:
                data = file.read(min(CHUNK_BYTES, left))
                if not data:
                    raise OSError(f"{self.name}: the file got shorter while it was uploaded")
                left -= len(data)
                yield data


def file_source(
    file_or_path: str | os.PathLike[str] | IO[bytes], name: str | None, sha256: str | None = None
) -> FileSource:
    """A `FileSource` for a path or a seekable binary file object: its size, and its sha256 read now unless the
    caller knows it (`sha256`: one pass over the file saved; the server still checks it)."""
    if sha256 is not None and not (
        isinstance(sha256, str) and len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)
    ):
        raise ValueError(f"sha256 must be 64 lowercase hexadecimal digits, not {sha256!r}")
    if isinstance(file_or_path, str | os.PathLike):
        path = Path(file_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"no file to upload at {path}")
        if sha256 is not None:
            return FileSource(path, None, 0, path.stat().st_size, sha256, name or path.name)
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
            size = file.tell()
        return FileSource(path, None, 0, size, digest, name or path.name)
    fileobj: Any = file_or_path
    if not (hasattr(fileobj, "read") and hasattr(fileobj, "seek")) or not fileobj.seekable():
        raise TypeError(
            "artifacts.upload takes a path or a seekable binary file object (open(path, 'rb'), io.BytesIO); "
            f"not {type(file_or_path).__name__}: write a stream to a file first"
        )
    start = fileobj.tell()
    shown = name or os.path.basename(str(getattr(fileobj, "name", "") or ""))
    if not shown:
        raise ValueError("artifacts.upload of a file object needs name=: it has no file name to use")
    if sha256 is not None:
        size = fileobj.seek(0, os.SEEK_END) - start
        fileobj.seek(start)
        return FileSource(None, fileobj, start, size, sha256, shown)
    hasher = hashlib.sha256()
    size = 0
    while chunk := fileobj.read(CHUNK_BYTES):
        if not isinstance(chunk, bytes):
            raise TypeError("artifacts.upload needs a binary file: open it with 'rb'")
        hasher.update(chunk)
        size += len(chunk)
    fileobj.seek(start)
    return FileSource(None, fileobj, start, size, hasher.hexdigest(), shown)


def parse_etag(value: str | None) -> str | None:
    """The sha256 a download's ETag names (`"<64 hex>"`), or None."""
    if value is None:
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    return tag if len(tag) == 64 else None


class Partial:
    """A download being written to `<target>.partial`: `write` hashes and writes, `commit(expected)` checks the
    sha256 and renames to the target (else removes the partial file and raises `ChecksumMismatchError`),
    `abandon` removes it."""

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = Path(target)
        self.path = self.target.with_name(self.target.name + ".partial")
        self._hash = hashlib.sha256()
        self._file = self.path.open("wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def commit(self, expected: str | None) -> Path:
        self._file.close()
        received = self._hash.hexdigest()
        if expected is not None and received != expected:
            self.abandon()
            raise ChecksumMismatchError(
                f"the downloaded bytes have sha256 {received}, not the artifact's {expected}; nothing was written "
                f"to {self.target}: download it again",
                expected=expected,
                received=received,
            )
        os.replace(self.path, self.target)
        return self.target

    def abandon(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def transfer_timeout(timeout: Any) -> Any:
    """An upload's or download's timeout: each connect, read and write bounded as the client's `timeout` says,
    the transfer as a whole not (a 5 GiB file takes the time it takes); a caller's `httpx.Timeout` as it is."""
    import httpx

    if isinstance(timeout, httpx.Timeout) or timeout is None:
        return timeout
    return httpx.Timeout(float(timeout), pool=None)
