"""The local credentials file, for the SDK and the reference server alike: where it is, and its one writer (which
also removes it: `tally auth logout`).

`tally auth login` (the SDK's CLI) and `tally serve` / `python -m tally_server` (the server) write it; `Tally()`
and `Tally("local")` read it (`tally._credentials`, which explains what it found). The layering rules keep
`tally_server` from importing `tally`, and `tally` imports `tally_server` only lazily (the `[server]` extra), so
the file's one home is this small package below both: it imports nothing of ours and needs only `platformdirs`,
which the bare install has.

Location: `$TALLY_CONFIG_DIR/credentials.json` when TALLY_CONFIG_DIR is set, else `credentials.json` in the
platform's user config directory for `tally`. Content: `{"api_key": "tk_org_...", "base_url": "http://..."}`;
other keys already in the file are kept.

Writing is atomic and durable: a private temporary file (created 0600 in one step, in the same directory),
written and fsynced, renamed over the file, then the directory fsynced, so a crash leaves the old file or the new
one, never a torn or world-readable one. A directory this creates is 0700. Removing unlinks the file and fsyncs
the directory, so a logout survives a crash too; the directory stays.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_DIR_ENV",
    "FILE_NAME",
    "credentials_path",
    "read_credentials",
    "remove_credentials",
    "write_credentials",
]

CONFIG_DIR_ENV = "TALLY_CONFIG_DIR"
FILE_NAME = "credentials.json"


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the credentials file lives (whether or not it exists)."""
    env = os.environ if env is None else env
    configured = env.get(CONFIG_DIR_ENV)
    if configured:
        return Path(configured).expanduser() / FILE_NAME
    import platformdirs

    return platformdirs.user_config_path("tally") / FILE_NAME


def read_credentials(path: Path | None = None) -> dict[str, Any] | None:
    """The file's content as a JSON object, or None when it is missing, unreadable or not an object."""
    path = path or credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_credentials(api_key: str, base_url: str, path: Path | None = None) -> Path:
    """Write (or update) the credentials file with `api_key` and `base_url`, keeping its other keys; returns
    its path. Atomic, durable and owner-only (see the module's docstring)."""
    path = path or credentials_path()
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    data = read_credentials(path) or {}
    data.update({"api_key": api_key, "base_url": base_url})
    # mkstemp creates the file with O_EXCL and mode 0600 in one step: it is never readable by others, not even
    # for a moment, and two writers never share a temporary file.
    import tempfile  # here: reading the file, which every client start may do, needs none of it

    fd, temporary = tempfile.mkstemp(prefix=f".{FILE_NAME}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    return path


def remove_credentials(path: Path | None = None) -> dict[str, Any] | None:
    """Remove the credentials file; returns what it held (`{}` when it was not a readable JSON object), or None
    when there was no file. Durable (see the module's docstring)."""
    path = path or credentials_path()
    held = read_credentials(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    _fsync_directory(path.parent)
    return held or {}


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable: fsync the directory that holds the file (POSIX; Windows has no such call)."""
    if os.name != "posix":  # pragma: no cover - Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
