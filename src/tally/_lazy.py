"""Thread-safe lazy loading: `import tally` stays cheap, and first use from many threads at once stays safe.

Tally imports what a call needs on first use. Python's import system locks each module, but a package whose
`__init__` imports its own children (`tally.run` and the generated `tally_api.models` used to) can deadlock when two
threads enter it at once from different sides: one runs the package's `__init__` and waits for a child, while the
other holds that child's lock and waits for the package. Python then raises `_DeadlockError: deadlock detected by
_ModuleLock(...)` in one of them, or a later `KeyError: 'tally_api.models'` (issue 20, item 7). So:

- a client imports the generated packages themselves (`tally_api` with its `client`, `types`, `errors`, `models`,
  `api`; `tally_api_types`), and the operations a training run sends, when it is constructed (`load_generated`),
  before any thread can call it. No other generated package `__init__` imports its children (`tally_api.models`
  imports each model on first use, `tally_api_types` its types), so a call's first import of an operation module
  or a model (the modules it needs, no more: issue 21) never meets a package that is half imported;
- `client.run()` loads the run's modules (the `tally.run` package's, with the few beside it that a run needs)
  the same way, on its first call (`load_run`), so `from tally import Tally` does not pay for them;
- every other lazy import of ours (`tally.<Name>`, `client.request(...)`'s operation modules, the client's
  resources, optional extras) goes through `load`, which holds one process-wide lock, so two of them never
  interleave.

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
GENERATED_PACKAGES = (
    "tally_api",
    "tally_api.types",
    "tally_api.errors",
    "tally_api.models",
    "tally_api.api",
    "tally_api_types",
)
"""What `load_generated` imports: every generated package whose `__init__` is not empty, and their parents."""
RUN_OPERATIONS = (
    "tally_api.api.experiments.create_experiment",
    "tally_api.api.experiments.get_experiment",
    "tally_api.api.experiments.update_experiment",
    "tally_api.api.experiments.update_experiment_status",
    "tally_api.api.ingestion_keys.create_ingestion_key",
    "tally_api.api.metrics.ingest_metrics",
    "tally_api.models.metadata",
    "tally_api.models.update_experiment_request_metadata_type_0",
    "tally_api.models.ingest_metrics_request",
)
"""The generated operations (and the models they import inside functions) that a training run sends (create, get
and update the experiment, its status, an ingestion key, the ingest): `load_generated` imports them with the
packages, so that `client.run()` does not import them as it starts, and the run's memory (its spool, buffers and
its own modules) is all that grows once the client is made (about 0.5 MiB of RSS; `make bench`'s logger memory
target takes its baseline there). A stale entry only costs time: each call imports what it needs anyway."""
RUN_MODULES = (
    "tally.run._run",
    "tally.run._capture",
    "tally.run._port",
    "tally.run._replay",
    "tally.run._resume",
    "tally.run._idle",
    "tally.run._ranks",
    "tally._run_ports",
)
"""What `client.run()` imports: the run package's modules (its `__init__` imports each name on first use) and its
helpers (`tally._run_ports` imports both clients' run ports)."""


def load(name: str) -> ModuleType:
    """`importlib.import_module(name)`, one thread at a time."""
    with _LOCK:
        return importlib.import_module(name)


def load_generated() -> None:
    """Import the generated packages' `__init__`s once per process, one thread at a time: `tally_api` (which
    imports its `client`), its `types`, `errors`, `models` and `api` packages, and `tally_api_types`; and
    `RUN_OPERATIONS`. About 10 ms, where every model and operation took about 55; any other operation module
    and model is imported by the first call that needs it (`_lazy`'s docstring says why that is safe)."""
    global _generated_loaded
    if _generated_loaded:
        return
    with _LOCK:
        if _generated_loaded:
            return
        for name in (*GENERATED_PACKAGES, *RUN_OPERATIONS):
            importlib.import_module(name)
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
