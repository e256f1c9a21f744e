"""Rate pacing against the reference server's `--rate-limit`: how close a paced client comes to the limit's floor.

N calls against a limit of L requests a second (burst L) cannot finish sooner than (N - L) / L seconds without a
429. The SDK paces from the `X-RateLimit-*` headers; the figure is its elapsed time over that floor, for one thread
and for four threads sharing one client, and the target is also that no 429 was met (counted by the innermost
transport, which sees every attempt, retries included).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from tally import Tally

RATE = 20
TARGET = 1.15


class _Counting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if response.status_code == 429:
            self.refused += 1
        return response


def _paced(url: str, api_key: str, calls: int, threads: int) -> tuple[float, int]:
    transport = _Counting()
    with (
        httpx.Client(transport=transport) as http,
        Tally(api_key=api_key, base_url=url, http_client=http) as client,
    ):

        def work() -> None:
            for _ in range(calls // threads):
                client.auth.status()

        workers = [threading.Thread(target=work) for _ in range(threads)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return time.perf_counter() - started, transport.refused


def run(
    report: Callable[[str, str, float | None, str, bool], None],
    server_process: Callable[..., AbstractContextManager[tuple[str, str]]],
    *,
    quick: bool,
) -> None:
    calls = 60 if quick else 200
    floor = (calls - RATE) / RATE
    with tempfile.TemporaryDirectory(prefix="tally-bench-pacing-") as scratch:
        for threads in (1, 4):
            db = Path(scratch) / f"pacing-{threads}.sqlite3"
            with server_process(db, ["--rate-limit", str(RATE)]) as (url, api_key):
                elapsed, refused = _paced(url, api_key, calls, threads)
            ratio = elapsed / floor
            report(
                f"pacing, {calls} calls at {RATE}/s, {threads} thread{'s' if threads > 1 else ''}",
                f"{elapsed:.2f} s, {refused} x 429 (floor {floor:.1f} s)",
                ratio,
                f"<= {TARGET}, no 429",
                ratio <= TARGET and refused == 0,
            )
