"""Wait for a reference server started as a subprocess to answer /v1/health, or stop the benchmark saying why.

One helper for every benchmark that starts `python -m tally_server` itself (bench.py, bench_postgres.py,
bench_server_memory.py), so they fail the same way: with the server's stderr when it died.
"""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    """Return once `url` answers /v1/health with 200; raise SystemExit if `process` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"the reference server did not start:\n{stderr}")
        time.sleep(0.1)
