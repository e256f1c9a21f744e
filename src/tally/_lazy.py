"""Thread-safe lazy loading: `import tally` stays cheap, and first use from many threads at once stays safe.

Tally imports what a call needs on first use. Python's import system locks each module, but a package whose
`__init__` imports its own children (the generated `tally_api.models`, `tally.run`) can deadlock when two threads
enter it at once from different sides: one runs the package's `__init__` and waits for a child, while the other
holds that child's lock and waits for the package. Python then raises `_DeadlockError: deadlock detected by
_ModuleLock(...)` in one of them, or a later `KeyError: 'tally_api.models'` (issue 20, item 7). So:

- a client loads the generated package whole when it is constructed (`load_generated`), before any thread can
  call it, so a call never imports generated code for the first time;
- `client.run()` loads the run's modules (the `tally.run` package whole, with the few beside it that a run needs)
  the same way, on its first call (`load_run`), so `from tally import Tally` does not pay for them;
- every other lazy import of ours (`tally.<Name>`, `client.request(...)`'s operation modules, optional extras)
  goes through `load`, which holds one process-wide lock, so two of them never interleave.

Mixing this lock with Python's module locks cannot deadlock: that would take a module imported under this lock (one
of Tally's own, the generated package's, or an extra such as pandas) waiting at import time for a thread that
wants this lock, and none of them asks for a `tally.<Name>` or builds a client while being imported.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tally import _IMPORT_LOCK as _LOCK  # the lock of `tally.<Name>` too

__all__ = ["load", "load_generated", "load_run"]

_generated_loaded = False
_run_loaded = False
RUN_MODULES = ("tally.run", "tally.run._idle", "tally.run._ranks", "tally._run_ports")
"""What `client.run()` imports: the run package (its `__init__` imports its children) and its helpers
(`tally._run_ports` imports both clients' run ports)."""


def load(name: str) -> ModuleType:
    """`importlib.import_module(name)`, one thread at a time."""
    with _LOCK:
        return importlib.import_module(name)


def load_generated() -> None:
    """Import the generated package (every model, every operation module) and `client.request`'s support once
    per process, one thread at a time. About 100 ms the first time (the models are most of it, and the first
    call would import them anyway); free afterwards."""
    global _generated_loaded
    if _generated_loaded:
        return
    with _LOCK:
        if _generated_loaded:
            return
        importlib.import_module("tally_api.models")
        importlib.import_module("tally_api.types")
        operations = importlib.import_module("tally_api_types.operations").OPERATIONS
        for operation in operations.values():
            importlib.import_module(operation.module)
        importlib.import_module("tally._operations")
        _generated_loaded = True


def load_run() -> None:
    """Import `RUN_MODULES` once per process, one thread at a time: `client.run()` calls this first, so that
    a program which never starts a run does not pay for the run's spool, sender, capture and replay at import."""
    global _run_loaded
    if _run_loaded:
        return
    with _LOCK:
        for name in RUN_MODULES:
            importlib.import_module(name)
        _run_loaded = True
