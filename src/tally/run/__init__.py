"""Logging from a training loop without losing anything: `client.run(...)`, its durable spool and its sender.

Three small parts, each tested alone: the spool (`_format`: the file format and its recovery, pure functions over
bytes; `_spool`: files, writer, lock), the sender (`_sender`: sends a spool in order through the public client,
exactly once), and the run (`_run`: `log()` only appends). `_replay` is `tally sync`. The package never imports a
client: the client hands its run a `SenderPort` (`_port`), the few calls the sender makes, over itself.
"""

# Names are imported on first use (PEP 562), so that importing one module of the package (`tally.run._spool`, in a
# sender process: `_sender_wire` says why) does not import them all, the client's httpx among them. Type checkers
# read the imports below instead; `tally._lazy.load` says why the first uses take one lock.
TYPE_CHECKING = False
if TYPE_CHECKING:
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

_LAZY: dict[str, str] = {
    "Capture": "._capture",
    "SenderPort": "._port",
    "SpoolReport": "._replay",
    "spool_status": "._replay",
    "sync_spools": "._replay",
    "ResumeError": "._resume",
    "ResumeMode": "._resume",
    "ClientClosedError": "._run",
    "Durability": "._run",
    "FlushTimeoutError": "._run",
    "Run": "._run",
    "RunRejectedError": "._run",
    "RunStatus": "._run",
    "SenderKind": "._run",
    "start_run": "._run",
    "DEFAULT_CAP_BYTES": "._spool",
    "SPOOL_DIR_ENV": "._spool",
    "CapPolicy": "._spool",
    "SpoolFullError": "._spool",
    "spool_root": "._spool",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tally.run' has no attribute {name!r}")
    from tally._lazy import load

    value = getattr(load(__name__ + module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
