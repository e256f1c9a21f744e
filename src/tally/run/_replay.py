"""`tally sync`: upload every pending spool (of crashed, offline or interrupted runs), and `tally sync --status`:
list them. The same `Drain` the live sender uses does the sending, so a replay is exactly as safe.

A spool whose lock a live process holds is skipped ("in use"). A spool whose every record is stored, or refused
and kept in the run's dead-letter file (`_deadletter`), is deleted; one that still holds unsent records never is.
Dead-letter files are listed too, also once their spool is gone. A run that crashed has no end record: its
events are stored, its experiment's status is left as it was.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._deadletter import SUFFIX, count_lines, dead_letter_path, iter_dead_letters
from ._format import KIND_ANNOTATION, KIND_ARTIFACT, KIND_CONFIG, KIND_LOG, MAGIC, decode_records
from ._port import SenderPort
from ._sender import Drain, is_rejection
from ._spool import FileStore, SpoolLock, iter_spools, read_header, read_progress, remove_spool, spool_root

__all__ = ["SpoolReport", "spool_status", "sync_spools"]

_CHUNK = 4 << 20


@dataclass
class SpoolReport:
    """One spool: its run, and what a sync did (or, for `spool_status`, what is pending).

    `state` is `pending` (listed, not synced), `synced` (everything stored or dead-lettered; the spool is
    deleted), `in_use` (a live process owns it), `failed` (the server could not be reached or refused the
    experiment; `error` says why; the spool is kept), or `dead_letter` (the spool is gone, its dead-letter file
    is left: `path` is that file). `rejected` counts the events this sync could not store; `dead_letter` is the
    run's dead-letter file when it exists, and `dead_lettered` how many records it holds. `torn` lists
    `(segment, offset, bytes, reason)` of skipped torn tails."""

    path: str
    run_key: str
    name: str | None
    experiment_id: str | None
    state: str
    pending: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    error: str | None = None
    torn: list[tuple[int, int, int, str]] = field(default_factory=list)
    dead_letter: str | None = None
    dead_lettered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pending_events(store: FileStore, progress: dict[str, Any], final: bool) -> int:
    count = 0
    for number in store.segments():
        if number < progress["segment"]:
            continue
        offset = progress["offset"] if number == progress["segment"] else len(MAGIC)
        while data := store.read(number, offset, _CHUNK):
            decoded = decode_records(data, base=offset, final=final and len(data) < _CHUNK)
            for _end, payload in decoded.records:
                if payload[0] == KIND_LOG:
                    count += len(payload[5])
                elif payload[0] in (KIND_ANNOTATION, KIND_CONFIG, KIND_ARTIFACT):
                    count += 1
            if decoded.end == offset or decoded.torn is not None:
                break
            offset = decoded.end
    return count


def _describe(path: Path, state: str, *, final: bool = True) -> SpoolReport:
    store = FileStore(path)
    header = read_header(store) or {}
    progress = read_progress(path)
    report = SpoolReport(
        path=str(path),
        run_key=str(header.get("run_key") or path.name),
        name=header.get("name"),
        experiment_id=progress["experiment_id"] or header.get("experiment_id"),
        state=state,
        pending=0 if progress["finished"] else _pending_events(store, progress, final),
    )
    _note_dead_letter(report, dead_letter_path(path))
    return report


def _note_dead_letter(report: SpoolReport, letter: Path) -> None:
    count = count_lines(letter)
    if count:
        report.dead_letter, report.dead_lettered = str(letter), count


def _left_dead_letters(root: Path, reported: list[SpoolReport]) -> list[SpoolReport]:
    """The dead-letter files whose spool is gone (and that `reported` does not list already)."""
    seen = {report.dead_letter for report in reported}
    reports = []
    for letter in iter_dead_letters(root):
        if str(letter) in seen or letter.with_name(letter.name[: -len(SUFFIX)]).is_dir():
            continue
        first: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError), letter.open(encoding="utf-8") as file:
            first = json.loads(file.readline())
        report = SpoolReport(
            path=str(letter),
            run_key=str(first.get("run_key") or letter.name[: -len(SUFFIX)]),
            name=first.get("name"),
            experiment_id=first.get("experiment_id"),
            state="dead_letter",
        )
        _note_dead_letter(report, letter)
        reports.append(report)
    return reports


def spool_status(root: Path | None = None) -> list[SpoolReport]:
    """Every spool under `root` (default: the spool directory) with its pending event count, then the
    dead-letter files whose spool is gone."""
    root = root or spool_root()
    reports = []
    for path in iter_spools(root):
        lock = SpoolLock(path)
        free = lock.acquire()
        try:
            reports.append(_describe(path, "pending" if free else "in_use", final=free))
        finally:
            lock.release()
    return reports + _left_dead_letters(root, reports)


def sync_spools(client: SenderPort, root: Path | None = None) -> list[SpoolReport]:
    """Upload every spool under `root` that no live process owns, oldest run first, through `client` (`tally
    sync` hands a port over a client built the usual way: `tally._run_ports.port_for`); report each, then the
    dead-letter files of earlier syncs whose spool is gone."""
    root = root or spool_root()
    reports = []
    for path in iter_spools(root):
        lock = SpoolLock(path)
        if not lock.acquire():
            reports.append(_describe(path, "in_use", final=False))
            continue
        report = _describe(path, "pending")
        drain = Drain(FileStore(path), client, directory=path, lock=lock)
        stored_before, rejected_before = drain.stored, drain.rejected
        try:
            while drain.step():
                pass
        except Exception as error:
            report.state = "failed"
            report.error = f"{type(error).__name__}: {error}"
            if is_rejection(error):
                report.error += " (refused; fix the cause and run `tally sync` again)"
        else:
            report.state = "synced"
        if drain.blocked is not None:  # nothing of it can be sent: keep it whole, and say why
            report.state = "failed"
            report.error = f"{drain.blocked} (refused; fix the cause and run `tally sync` again)"
        report.experiment_id = drain.experiment_id or report.experiment_id
        report.stored = drain.stored - stored_before
        report.duplicates = drain.duplicates
        report.rejected = drain.rejected - rejected_before
        report.torn = [(segment, t.offset, t.size, t.reason) for segment, t in drain.torn]
        report.pending = max(report.pending - report.stored - report.rejected, 0)
        _note_dead_letter(report, dead_letter_path(path))
        if report.state == "synced":  # every record is stored or dead-lettered: nothing unsent is left
            report.pending = 0
            drain.close()
            remove_spool(path)
        else:
            drain.close()
        reports.append(report)
    return reports + _left_dead_letters(root, reports)
