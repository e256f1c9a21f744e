"""A fresh process whose client is first used by 9 threads at once, run by `test_first_use.py`:

    python first_use_script.py BASE_URL API_KEY EXPERIMENT_ID RUN_EXPERIMENT_ID

Each thread makes a different first call (so each loads different parts of the SDK and of the generated package
for the first time), all released together by a `threading.Barrier`; two of them go through `client.run()` (which
loads the run's modules on first use), whose sender threads make their own first calls, and one reaches
`tally.AsyncTally` for the first time from its thread.
Exits 0 when every call succeeded; otherwise prints each failure's traceback and exits 1.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import tally


def main() -> None:
    base_url, api_key, experiment_id, run_experiment_id = sys.argv[1:5]
    client = tally.Tally(api_key=api_key, base_url=base_url)

    async def async_health() -> Any:
        async with tally.AsyncTally(api_key=api_key, base_url=base_url) as async_client:
            return await async_client.health()

    def run() -> None:
        with client.run(experiment_id=run_experiment_id) as training:
            training.log({"loss": 0.5}, step=1)

    def new_run() -> None:
        with client.run(f"first-use-{uuid.uuid4().hex[:10]}") as training:
            training.log({"loss": 0.25})

    calls: list[Callable[[], Any]] = [
        lambda: asyncio.run(async_health()),
        lambda: client.experiments.get(experiment_id),
        lambda: client.experiments.update(experiment_id, description="first use"),
        lambda: client.folders.create(f"first-use-{uuid.uuid4().hex[:10]}"),
        lambda: client.metrics.ingest(experiment_id, [{"name": "loss", "value": 1.0, "step": 1}]),
        lambda: client.annotations.create(experiment_id, "first use", step=1),
        lambda: client.metrics.compare([tally.SeriesSelector(experiment_id=experiment_id, name="loss")]),
        run,
        new_run,
    ]
    barrier = threading.Barrier(len(calls))
    failures: list[str] = []

    def work(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException:
            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
