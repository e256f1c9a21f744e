"""A run's dead-letter file: the events and annotations that can never be stored, kept with the reason, so that a
refused record never takes the valid ones with it and is never silently dropped.

What lands here: an event or annotation the server refused (400, 413 or 422 for that event alone, after the
sender split its batch until the refused ones were isolated; 403, 404 or 409 for every event of a batch, such as
an experiment that was deleted or closed meanwhile; a `client_event_id` conflict), one the SDK's own checks
refuse at send time (a spool written by an older SDK), and a spool record that cannot be read as one.

Where: beside the run's spool directory, `<spool root>/<run>.dead-letter.jsonl` (mode 0600), so that it outlives
the spool, which is deleted once everything in it is stored or here. `tally sync` and `tally sync --status` list
these files; nothing deletes them: inspect them, fix and re-send what matters (`client.metrics.ingest`,
`client.annotations.create`), then delete the file.

Format: JSON lines, UTF-8, appended; one object per refused event or annotation::

    {"run_key": "1a2b3c4d", "name": "resnet50" | null, "experiment_id": "exp_..." | null,
     "kind": "metric" | "annotation" | "config" | "record",
     "record": {...},   the event or annotation as it was sent (for "record": {"payload": "<repr of the record>"})
     "error": {"status": 400 | null, "code": "invalid_request" | null, "message": "...", "request_id": "..." | null},
     "at": "2026-11-23T10:00:00.000Z"}

`status`, `code` and `request_id` are the server's; they are null when the SDK refused the record itself. Numbers
JSON cannot hold (NaN, Infinity) are written as Python's `json` writes them. A sync killed between writing lines
and recording its progress writes them again on the next sync; each carries its `client_event_id`, so a repeat is
recognisable.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tally._errors import APIStatusError

__all__ = ["SUFFIX", "DeadLetter", "count_lines", "dead_letter_path", "error_info", "iter_dead_letters"]

SUFFIX = ".dead-letter.jsonl"


def dead_letter_path(spool: Path) -> Path:
    """The dead-letter file of the run whose spool directory is `spool`."""
    return spool.with_name(spool.name + SUFFIX)


def iter_dead_letters(root: Path) -> Iterator[Path]:
    """Every dead-letter file under the spool root, oldest run first."""
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return
    for name in names:
        if name.endswith(SUFFIX):
            yield root / name


def count_lines(path: Path) -> int:
    """How many refused records a dead-letter file holds (0 when there is none)."""
    try:
        with path.open("rb") as file:
            return sum(1 for line in file if line.strip())
    except FileNotFoundError:
        return 0


def error_info(error: BaseException | str) -> dict[str, Any]:
    """Why a record was refused, as a dead-letter line says it."""
    if isinstance(error, APIStatusError):
        return {
            "status": error.status_code,
            "code": error.code,
            "message": error.message,
            "request_id": error.request_id,
        }
    return {"status": None, "code": None, "message": str(error), "request_id": None}


def _now() -> str:
    millis = round(time.time() * 1000)
    seconds, fraction = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:03d}Z"


class DeadLetter:
    """Appends refused records to one run's dead-letter file (created on the first one)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(
        self,
        entries: list[tuple[str, dict[str, Any], dict[str, Any]]],
        *,
        header: dict[str, Any] | None,
        experiment_id: str | None,
    ) -> None:
        """Write `(kind, record, error)` entries, all in one `write`, before the sender records its progress."""
        if not entries:
            return
        header = header or {}
        stamp = _now()
        lines = [
            json.dumps(
                {
                    "run_key": header.get("run_key"),
                    "name": header.get("name"),
                    "experiment_id": experiment_id,
                    "kind": kind,
                    "record": record,
                    "error": error,
                    "at": stamp,
                },
                ensure_ascii=False,
                default=repr,
            )
            for kind, record, error in entries
        ]
        data = ("\n".join(lines) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
