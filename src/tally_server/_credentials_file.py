"""The local credentials file that `tally serve` writes and the SDK reads for `Tally("local")`.

Location: `$TALLY_CONFIG_DIR/credentials.json` when TALLY_CONFIG_DIR is set, else
`platformdirs.user_config_path("tally") / "credentials.json"`. Content: `{"api_key": "tk_org_...",
"base_url": "http://127.0.0.1:8787"}` (other keys already in the file are kept). Written atomically, the file
with mode 0600 and a directory this creates with mode 0700.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import platformdirs

__all__ = ["credentials_dir", "credentials_path", "read_credentials", "write_credentials"]

FILE_NAME = "credentials.json"


def credentials_dir() -> Path:
    configured = os.environ.get("TALLY_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser()
    return platformdirs.user_config_path("tally")


def credentials_path() -> Path:
    return credentials_dir() / FILE_NAME


def read_credentials(path: Path | None = None) -> dict[str, Any] | None:
    """The file's content, or None when it is missing or unreadable."""
    path = path or credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_credentials(api_key: str, base_url: str, path: Path | None = None) -> Path:
    """Write (or update) the credentials file atomically with owner-only permissions; returns its path."""
    path = path or credentials_path()
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    data = read_credentials(path) or {}
    data.update({"api_key": api_key, "base_url": base_url})
    temporary = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return path
