"""Artifact contents on the filesystem, content-addressed by sha256 (the metadata is in the database:
`storage.artifacts`).

Layout under the root (`tally serve --artifacts-dir`): `sha256/<first two hex digits>/<the 64 hex digits>` for
each content, kept once however many artifacts share it, and `incoming/` for uploads still arriving. An upload is
written to a temporary file in `incoming/` (on the same filesystem, so the final step is a rename), hashed as it
arrives, fsynced, and only then renamed to its content's name, inside the database transaction that records the
artifact; so an upload cut halfway leaves no half file under `sha256/`, only a temporary one, which this process
removes when the request ends, or, when the process itself died, the next start removes once it has been left
untouched for `STALE_SECONDS` (a live upload writes to its file all the time, so several processes can share the
directory).

Who removes a content: the transaction that deletes the last artifact using it (see `storage.artifacts` for the
lock that makes that safe across processes).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["DEFAULT_MAX_ARTIFACT_BYTES", "STALE_SECONDS", "ContentStore", "Staged"]

logger = logging.getLogger("tally_server")

DEFAULT_MAX_ARTIFACT_BYTES = 5 * 1024**3
STALE_SECONDS = 600.0
_INCOMING = "incoming"
_CONTENTS = "sha256"


def _fsync_dir(path: Path) -> None:
    """Make a rename or an unlink in `path` durable (a no-op where directories cannot be opened, Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Staged:
    """An upload being written to its temporary file: `write` hashes and writes, `finish` fsyncs and closes,
    `discard` removes the file (a no-op once it was published)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._hash = hashlib.sha256()
        self._file = open(path, "xb", buffering=0)  # noqa: SIM115 - closed by finish() or discard()
        self.published = False

    def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._hash.update(chunk)
            view = memoryview(chunk)
            while view:
                written = self._file.write(view)
                view = view[written or 0 :]
            self.size += len(chunk)

    def finish(self) -> None:
        os.fsync(self._file.fileno())
        self._file.close()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        if not self.published:
            self.path.unlink(missing_ok=True)


class ContentStore:
    """The contents' directory, and the largest artifact it takes (`max_bytes`). `scratch` removes the whole
    directory on `close()` (the scratch database's contents go with it)."""

    def __init__(self, root: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_artifact_bytes must be at least 1")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.scratch = False
        (self.root / _INCOMING).mkdir(parents=True, exist_ok=True)
        (self.root / _CONTENTS).mkdir(exist_ok=True)
        self.clean_incoming()

    @classmethod
    def temporary(cls, *, max_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES) -> ContentStore:
        store = cls(tempfile.mkdtemp(prefix="tally-artifacts-"), max_bytes=max_bytes)
        store.scratch = True
        return store

    def clean_incoming(self, older_than: float = STALE_SECONDS) -> int:
        """Remove the temporary files of uploads that stopped (their process died): those untouched for
        `older_than` seconds. Answers how many went."""
        removed = 0
        cutoff = time.time() - older_than
        for entry in (self.root / _INCOMING).iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        if removed:
            logger.info("removed %d temporary files of uploads that were cut short", removed)
        return removed

    def stage(self) -> Staged:
        return Staged(self.root / _INCOMING / f"{secrets.token_hex(12)}.part")

    def path_of(self, sha256: str) -> Path:
        return self.root / _CONTENTS / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def publish(self, staged: Staged, sha256: str) -> None:
        """Give a finished upload its content's name; when that content is already stored, keep the one stored
        (the caller holds the content's lock, so it cannot be removed meanwhile)."""
        final = self.path_of(sha256)
        if final.is_file():
            staged.discard()
            staged.published = True
            return
        final.parent.mkdir(exist_ok=True)
        os.replace(staged.path, final)
        staged.published = True
        _fsync_dir(final.parent)

    def remove(self, sha256: str) -> None:
        """Remove a content no artifact uses (the caller holds its lock)."""
        final = self.path_of(sha256)
        final.unlink(missing_ok=True)
        _fsync_dir(final.parent)

    def close(self) -> None:
        if self.scratch:
            shutil.rmtree(self.root, ignore_errors=True)
