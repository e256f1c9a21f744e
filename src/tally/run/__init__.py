"""Logging from a training loop without losing anything: `client.run(...)`, its durable spool and its sender.

Three small parts, each tested alone: the spool (`_format`: the file format and its recovery, pure functions over
bytes; `_spool`: files, writer, lock), the sender (`_sender`: sends a spool in order through the public client,
exactly once), and the run (`_run`: `log()` only appends). `_replay` is `tally sync`. The package never imports a
client: the client hands its run a `SenderPort` (`_port`), the few calls the sender makes, over itself.
"""

from ._capture import Capture
from ._port import SenderPort
from ._replay import SpoolReport, spool_status, sync_spools
from ._resume import ResumeError, ResumeMode
from ._run import (
    ClientClosedError,
    Durability,
    FlushTimeoutError,
    Run,
    RunRejectedError,
    RunStatus,
    SenderKind,
    start_run,
)
from ._spool import DEFAULT_CAP_BYTES, SPOOL_DIR_ENV, CapPolicy, SpoolFullError, spool_root

__all__ = [
    "DEFAULT_CAP_BYTES",
    "SPOOL_DIR_ENV",
    "CapPolicy",
    "Capture",
    "ClientClosedError",
    "Durability",
    "FlushTimeoutError",
    "ResumeError",
    "ResumeMode",
    "Run",
    "RunRejectedError",
    "RunStatus",
    "SenderKind",
    "SenderPort",
    "SpoolFullError",
    "SpoolReport",
    "spool_root",
    "spool_status",
    "start_run",
    "sync_spools",
]
