"""A fresh client first used by several threads at once, against the live server, in fresh processes.

The SDK imports what a call needs on first use (`import tally` stays cheap). Lazy imports racing in threads hit
the import system's per-module locks: a thread that imports a model of the generated package while another is
still running the package's `__init__` raised `_DeadlockError: deadlock detected by _ModuleLock(...)` or
`KeyError: 'tally_api.models'` (issue 20, item 7: 7 of 20 processes). Only a fresh process shows it, so each case
is a process of its own (`first_use_script.py`), a few at a time.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tally import Tally
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.timeout(180)

SCRIPT = Path(__file__).with_name("first_use_script.py")
PROCESSES = 20
AT_ONCE = 4


def test_a_fresh_client_first_used_by_nine_threads_at_once_works(live_server: RunningServer) -> None:
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        shared = client.experiments.create(unique("first-use")).id
        own = [client.experiments.create(unique("first-use-run")).id for _ in range(PROCESSES)]

    def one(run_experiment_id: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            str(SCRIPT),
            live_server.url,
            live_server.api_key,
            shared,
            run_experiment_id,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(AT_ONCE) as pool:
        finished = list(pool.map(one, own))
    failed = [process.stderr[-3000:] for process in finished if process.returncode != 0]
    assert not failed, f"{len(failed)} of {PROCESSES} processes failed; the first:\n{failed[0]}"
