"""`make demo`: Tally's whole job, end to end, in under a minute.

Against `TALLY_BASE_URL` with the resolved credentials when that is set, else against an embedded reference server
started for the run. It creates a folder and three experiments, ingests 300,000+ metric events with a progress bar,
re-sends a batch to show that duplicates are counted and never stored twice, compares the three loss curves, lists
the metric catalog with the distinct `split` values, revokes an ingestion key and shows the error that follows, and
sums up. Every step checks its outcome; the first one that fails ends the run with a non-zero exit code.

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
from typing import Any

from tally import AuthenticationError, Tally, TallyError
from tally._extras import MissingExtraError, missing_extra

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
BATCH = 10_000
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


def training_events(run: str, lr: float) -> Iterator[dict[str, Any]]:
    """The events one training run logs: loss and nine other metrics every step, validation every 100 steps."""
    for step in range(STEPS):
        loss = loss_curve(step, lr)
        yield {"name": "loss", "value": loss, "step": step, "metadata": {"split": "train"}}
        for index, name in enumerate(TRAIN_METRICS):
            value = 1 - loss / 2.4 if name == "accuracy" else lr * (index + 1) + step * 1e-6
            yield {"name": name, "value": value, "step": step, "metadata": {"split": "train", "run": run}}
        if step % VALIDATE_EVERY == 0:
            yield {"name": "loss", "value": loss * 1.07, "step": step, "metadata": {"split": "val"}}
            yield {"name": "accuracy", "value": 1 - loss / 2.2, "step": step, "metadata": {"split": "val"}}


def chunks(events: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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


def run(client: Tally, where: str) -> None:
    started = time.perf_counter()
    console.print(f"[bold]Tally demo[/] against {where}")
    health = client.health()
    console.print(f"server {health.status}, version {health.version}")

    # 1. A folder and three experiments.
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = client.folders.create(
        f"demo-{stamp}-{os.getpid()}", description="Learning-rate sweep from `make demo`"
    )
    experiments = {
        run: client.experiments.create(run, folder_id=folder.id, metadata={"lr": lr})
        for run, lr in RUNS.items()
    }
    console.print(f"folder [cyan]{folder.name}[/] with experiments {', '.join(experiments)}")

    # 2. Ingest every run's events, with a progress bar in events per second.
    per_run = STEPS * (1 + len(TRAIN_METRICS)) + 2 * (STEPS // VALIDATE_EVERY)
    total_events = per_run * len(RUNS)
    totals = Totals()
    first_batch: tuple[str, list[dict[str, Any]]] | None = None
    ingest_started = time.perf_counter()
    columns = (
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10,.0f} events/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("ingest", total=total_events, rate=0.0)
        for run, lr in RUNS.items():
            experiment_id = experiments[run].id
            for batch in chunks(training_events(run, lr), BATCH):
                result = client.metrics.ingest(experiment_id, batch)
                check(not result.conflicts, f"unexpected conflicts: {result.conflicts[:3]}")
                totals.sent += len(batch)
                totals.accepted += result.accepted
                totals.duplicates += result.duplicates
                first_batch = first_batch or (experiment_id, batch)
                elapsed = time.perf_counter() - ingest_started
                progress.update(task, advance=len(batch), rate=totals.sent / elapsed)
    ingest_seconds = time.perf_counter() - ingest_started
    check(totals.accepted == total_events, f"{totals.accepted} of {total_events} events accepted")
    console.print(
        f"ingested {totals.accepted:,} events in {ingest_seconds:.1f} s ({totals.accepted / ingest_seconds:,.0f}/s)"
    )

    # 3. Re-send one batch: every event is a duplicate, nothing is stored twice.
    assert first_batch is not None
    experiment_id, batch = first_batch
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
    for run in RUNS:
        table.add_column(run, justify="right")
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
    run_name, experiment = next(iter(experiments.items()))
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

    # 7. Summary.
    client.experiments.update_status(experiment.id, "completed")
    elapsed = time.perf_counter() - started
    console.print(
        f"[bold green]done[/] in {elapsed:.1f} s: {len(experiments)} experiments, {totals.accepted:,} events stored, "
        f"{replay.duplicates:,} duplicates ignored, {len(catalog)} metrics in the catalog, "
        f"{len(comparison.rows):,} aligned steps compared; {run_name} marked completed."
    )


def main() -> int:
    try:
        with connect() as (client, where):
            run(client, where)
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
