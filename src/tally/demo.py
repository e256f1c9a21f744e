"""`make demo`: Tally's whole job, end to end, in under a minute.

Against `TALLY_BASE_URL` with the resolved credentials when that is set, else against an embedded reference server
started for the run. It creates a folder and three runs (one experiment each), logs 300,000+ metric values through
`run.log()` the way a training loop would (each call appends to the run's durable spool and returns; a background
sender stores them) with a progress bar, re-sends a batch to show that duplicates are counted and never stored
twice, compares the three loss curves, lists the metric catalog with the distinct `split` values, revokes an
ingestion key and shows the error that follows, closes the runs (experiments marked completed), and sums up. Every
step checks its outcome; the first one that fails ends the run with a non-zero exit code.

    python -m tally.demo
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tally import AuthenticationError, Tally, TallyError
from tally._events import MAX_BATCH_EVENTS
from tally._extras import MissingExtraError, missing_extra
from tally._pagination import MAX_PAGE_SIZE

try:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table
except ModuleNotFoundError as error:  # a bare install: say which extra, in one line
    raise SystemExit(str(missing_extra(error, "cli", "the demo's progress bar and tables"))) from None

STEPS = 10_000  # training steps per experiment
TRAIN_METRICS = (
    "accuracy",
    "learning_rate",
    "grad_norm",
    "throughput/samples_per_sec",
    "gpu/memory_gb",
    "gpu/utilization",
    "loss_scale",
    "weight_norm",
    "data/wait_ms",
)
VALIDATE_EVERY = 100
BATCH = MAX_BATCH_EVENTS  # the contract's events per ingest request: the batch re-sent to show duplicates
RUNS = {"lr-3e-4": 3e-4, "lr-1e-3": 1e-3, "lr-3e-3": 3e-3}

console = Console(highlight=False)


class DemoFailure(Exception):
    """A step of the demo did not produce what it should."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailure(message)


@dataclass
class Totals:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0


def loss_curve(step: int, lr: float) -> float:
    """A plausible training loss: faster descent for larger learning rates, with a little wobble."""
    return 0.05 + 2.3 * math.exp(-step * lr * 0.8) + 0.01 * math.sin(step / 37)


def training_step(run: str, lr: float, step: int) -> Iterator[tuple[dict[str, float], dict[str, str]]]:
    """What one training step logs, as `run.log(values, metadata=...)` calls: the loss, nine other metrics, and
    a validation loss and accuracy every 100 steps."""
    loss = loss_curve(step, lr)
    yield {"loss": loss}, {"split": "train"}
    yield (
        {
            name: 1 - loss / 2.4 if name == "accuracy" else lr * (index + 1) + step * 1e-6
            for index, name in enumerate(TRAIN_METRICS)
        },
        {"split": "train", "run": run},
    )
    if step % VALIDATE_EVERY == 0:
        yield {"loss": loss * 1.07, "accuracy": 1 - loss / 2.2}, {"split": "val"}


@contextlib.contextmanager
def connect() -> Iterator[tuple[Tally, str]]:
    """A client for TALLY_BASE_URL when set, else for a fresh embedded server."""
    if os.environ.get("TALLY_BASE_URL"):
        with Tally() as client:
            yield client, os.environ["TALLY_BASE_URL"]
        return
    from tally.embedded import start_embedded

    with start_embedded() as server, server.client() as client:
        yield client, f"{server.url} (embedded, scratch database)"


def run(client: Tally, where: str, stack: contextlib.ExitStack) -> None:
    started = time.perf_counter()
    console.print(f"[bold]Tally demo[/] against {where}")
    health = client.health()
    console.print(f"server {health.status}, version {health.version}")

    # 1. A folder, and one run per learning rate: each run creates its experiment.
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = client.folders.create(
        f"demo-{stamp}-{os.getpid()}", description="Learning-rate sweep from `make demo`"
    )
    runs = {
        name: stack.enter_context(client.run(name, folder_id=folder.id, metadata={"lr": lr}))
        for name, lr in RUNS.items()
    }
    check(all(run.id for run in runs.values()), "a run did not create its experiment")
    experiments = {name: client.experiments.get(run.id or "") for name, run in runs.items()}
    console.print(f"folder [cyan]{folder.name}[/] with runs {', '.join(experiments)}")

    # 2. Log every step the way a training loop does: run.log() appends to the run's spool and returns at once;
    #    the background sender stores what is logged. The bar counts values stored, in values per second.
    per_run = STEPS * (1 + len(TRAIN_METRICS)) + 2 * (STEPS // VALIDATE_EVERY)
    total_events = per_run * len(RUNS)
    totals = Totals()
    log_ns = 0
    ingest_started = time.perf_counter()
    columns = (
        TextColumn("logging"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10,.0f} stored/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("log", total=total_events, rate=0.0)

        def show() -> None:
            stored = sum(run.status().stored for run in runs.values())
            progress.update(task, completed=stored, rate=stored / (time.perf_counter() - ingest_started))

        for name, lr in RUNS.items():
            run = runs[name]
            for step in range(STEPS):
                for values, labels in training_step(name, lr, step):
                    started_ns = time.perf_counter_ns()
                    run.log(values, step=step, metadata=labels)
                    log_ns += time.perf_counter_ns() - started_ns
                    totals.sent += len(values)
                if step % 500 == 0:
                    show()
        for run in runs.values():
            run.flush(timeout=300)
        show()
    ingest_seconds = time.perf_counter() - ingest_started
    for run in runs.values():
        status = run.status()
        check(status.rejected == 0 and status.pending == 0, f"run {run.name}: {status}")
        totals.accepted += status.stored
    check(totals.sent == total_events, f"{totals.sent} values logged, expected {total_events}")
    check(totals.accepted == total_events, f"{totals.accepted} of {total_events} values stored")
    console.print(
        f"logged {totals.sent:,} values; run.log() took {log_ns / totals.sent / 1000:.2f} µs a value; "
        f"all stored in {ingest_seconds:.1f} s ({totals.accepted / ingest_seconds:,.0f}/s)"
    )

    # 3. Re-send stored events with their client_event_ids: every one is a duplicate, nothing is stored twice.
    experiment_id = experiments[next(iter(RUNS))].id
    batch = [
        {
            "name": point.name,
            "value": point.value,
            "step": point.step,
            "timestamp": point.timestamp,
            "metadata": point.metadata,
            "client_event_id": point.client_event_id,
        }
        for point in client.metrics.list(experiment_id, limit=BATCH, page_size=MAX_PAGE_SIZE)
    ]
    replay = client.metrics.ingest(experiment_id, batch)
    check(replay.accepted == 0 and replay.duplicates == len(batch), f"re-sent batch gave {replay}")
    stored = sum(entry.count for entry in client.metric_catalog.list(experiment_id=experiment_id))
    check(stored == per_run, f"{stored} points stored for one run, expected {per_run}")
    console.print(
        f"re-sent a batch of {len(batch):,}: {replay.duplicates:,} duplicates, {replay.accepted} stored; "
        f"the run still holds exactly {stored:,} points"
    )

    # 4. Compare the three training-loss curves, aligned by step.
    series = [
        {"experiment_id": e.id, "name": "loss", "metadata": {"split": "train"}} for e in experiments.values()
    ]
    comparison = client.metrics.compare(series, min_step=0, max_step=STEPS - 1, limit=STEPS)
    check(len(comparison.rows) == STEPS, f"compare returned {len(comparison.rows)} rows, expected {STEPS}")
    table = Table(title="training loss by step", show_edge=False)
    table.add_column("step", justify="right")
    for run_name in RUNS:
        table.add_column(run_name, justify="right")
    for row in comparison.rows:
        if row.step % 1000 == 0 or row.step == STEPS - 1:
            table.add_row(str(row.step), *("-" if v is None else f"{v:.4f}" for v in row.values))
    console.print(table)

    # 5. The metric catalog of the folder, and the distinct values of `split` for `loss`.
    catalog = list(client.metric_catalog.list(folder_id=folder.id))
    check(len(catalog) == 1 + len(TRAIN_METRICS), f"catalog lists {len(catalog)} metrics")
    catalog_table = Table(title=f"metric catalog of {folder.name}", show_edge=False)
    for column in ("metric", "points", "experiments", "metadata keys"):
        catalog_table.add_column(column, justify="right" if column in ("points", "experiments") else "left")
    for entry in catalog:
        catalog_table.add_row(
            entry.name, f"{entry.count:,}", str(entry.experiment_count), ", ".join(entry.metadata_keys)
        )
    console.print(catalog_table)
    splits = {
        v.value: v.count for v in client.metric_catalog.inspect_values("loss", "split", folder_id=folder.id)
    }
    check(set(splits) == {"train", "val"}, f"split values of loss: {splits}")
    console.print(
        "distinct `split` values of loss: " + ", ".join(f"{k} ({v:,} points)" for k, v in splits.items())
    )

    # 6. Revoke an ingestion key, and show what its holder is told next.
    experiment = next(iter(experiments.values()))
    key = client.ingestion_keys.create(experiment.id, name="demo-collaborator")
    client.ingestion_keys.revoke(key.id)
    try:
        with Tally(api_key=key.token, base_url=str(client.base_url), max_retries=0) as holder:
            holder.auth.status()
    except AuthenticationError as error:
        console.print(f"revoked key {key.id} (…{key.token_hint}); its holder now gets:\n  [red]{error}[/]")
    else:
        raise DemoFailure("a revoked ingestion key was still accepted")
    keys = list(client.ingestion_keys.list(experiment.id))
    check(
        any(k.id == key.id and k.revoked_at is not None for k in keys),
        "the revoked key is not listed as revoked",
    )

    # 7. Close the runs: each marks its experiment completed. Then the summary.
    stack.close()
    for experiment in experiments.values():
        final = client.experiments.get(experiment.id)
        check(final.status == "completed", f"{final.name} is {final.status} after its run closed")
    elapsed = time.perf_counter() - started
    console.print(
        f"[bold green]done[/] in {elapsed:.1f} s: {len(experiments)} runs, {totals.accepted:,} values stored, "
        f"{replay.duplicates:,} duplicates ignored, {len(catalog)} metrics in the catalog, "
        f"{len(comparison.rows):,} aligned steps compared; every run marked completed."
    )


def main() -> int:
    try:
        with connect() as (client, where), contextlib.ExitStack() as stack:
            run(client, where, stack)
    except DemoFailure as failure:
        console.print(f"[bold red]demo failed:[/] {failure}")
        return 1
    except TallyError as error:
        console.print(f"[bold red]demo failed:[/] {error}")
        return 1
    except MissingExtraError as error:  # no TALLY_BASE_URL and no reference server installed
        console.print(f"[bold red]demo failed:[/] {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
