"""`run.log_artifact`: the file is copied into the run's spool when it is logged, then uploaded by the sender in
log order, like every record.

Copied, not hard-linked: a hard link shares the file's inode, and the usual way a training loop rewrites a
checkpoint (`torch.save(state, "last.pt")` opens the same path with "wb") truncates and rewrites that inode, so
the spooled bytes would change under the upload (and its sha256 would no longer match). A copy costs one read and
one write of the file at `log_artifact()` time; after it the caller may delete or overwrite the file at once.

The copy is written to `<name>.part`, fsynced and renamed, and only then is the record appended: a process killed
mid-copy leaves a `.part` file (removed with the spool) and no record. The sender removes the copy once the upload
is stored, before it records its progress; so a record whose copy is gone was stored (the upload's stable
Idempotency-Key makes the server replay it if it is sent again).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["ARTIFACTS_DIR", "check_artifact_name", "copy_for_upload"]

ARTIFACTS_DIR = "artifacts"
_CHUNK = 1024 * 1024
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,255}")


def check_artifact_name(name: str) -> str:
    """The contract's artifact name: 1 to 255 characters, no control characters; ValueError naming the fix."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"artifact name {name!r} must be 1 to 255 characters without control characters "
            "(a path such as 'checkpoints/epoch-3.pt' is fine)"
        )
    return name


def copy_for_upload(source: Path, target: Path) -> tuple[int, str]:
    """Copy `source` to `target` (via `target.part`, fsynced, renamed), hashing as it goes: (size, sha256)."""
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with source.open("rb") as reader, partial.open("wb") as writer:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()
