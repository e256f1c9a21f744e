"""Typing-only: exercises the public API under `mypy --strict tests/typing`. Never run, never collected."""

from __future__ import annotations

from datetime import UTC, datetime

import tally
import tally.retries
from tally import AsyncTally, Tally


def sync_usage() -> None:
    with Tally(api_key="tk_org_x", base_url="http://127.0.0.1:8787", timeout=5.0, max_retries=1) as client:
        health: tally.Health = client.health()
        status: tally.AuthStatus = client.auth.status()
        source: str | None = status.credential_source
        folder: tally.Folder = client.folders.create("f", metadata={"a": 1})
        folder = client.folders.patch(folder.id, description=None)
        folder = client.folders.rename(folder.id, "g")
        folder = client.folders.move(folder.id, None)
        folders: tally.Paginator[tally.Folder] = client.folders.list(parent_id=folder.id, limit=10)
        for item in folders:
            name: str = item.name
        experiment: tally.Experiment = client.experiments.create("e", folder_id=folder.id)
        experiment = client.experiments.update_status(experiment.id, tally.ExperimentStatus.COMPLETED)
        experiment = client.experiments.move(experiment.id, None)
        running: bool = experiment.status == tally.ExperimentStatus.RUNNING
        for page in client.experiments.list(created_after=datetime.now(UTC), page_size=50).pages():
            items: tuple[tally.Experiment, ...] = page.data
            cursor: str | None = page.next_cursor
        result: tally.IngestResult = client.metrics.ingest(
            experiment.id,
            [{"name": "loss", "value": 0.1, "step": 1}, tally.MetricEvent(name="acc", value=1.0, step=1)],
        )
        conflicts: tuple[tally.EventConflict, ...] = result.conflicts
        points = client.metrics.list(experiment.id, name="loss", min_step=0)
        value: float = next(iter(points)).value
        resume: str | None = points.next_cursor
        compared: tally.CompareResult = client.metrics.compare(
            [tally.SeriesSelector(experiment_id="e", name="n")]
        )
        row_values: tuple[float | None, ...] = compared.rows[0].values
        entry: tally.CatalogEntry = next(iter(client.metric_catalog.list(experiment_id=experiment.id)))
        counts: list[tally.MetadataValueCount] = list(client.metric_catalog.inspect_values("loss", "split"))
        key: tally.CreatedIngestionKey = client.ingestion_keys.create(experiment.id, name="k")
        token: str = key.token
        revoked: tally.IngestionKey = client.ingestion_keys.revoke(key.id)
        client.ingestion_keys.forget(experiment.id)
        note: tally.Annotation = client.annotations.create(experiment.id, "hi", step=3)
        notes: list[tally.Annotation] = list(client.annotations.list(experiment.id))
        raw: tally.RawResponse[tally.Experiment] = client.with_raw_response(client.experiments.get)(
            experiment.id
        )
        request_id: str | None = raw.request_id
        quick: Tally = client.with_options(timeout=1.0, max_retries=0)
        as_dict: dict[str, object] = quick.experiments.get(experiment.id).to_dict()
        ident: str = tally.event_id(experiment.id, "loss", 3, {"split": "train"})
        experiment = client.experiments.create("t", tags=["a", "b"])
        experiment = client.experiments.update(experiment.id, name="u", tags=None, metadata={"k": 1})
        experiment = client.experiments.archive(experiment.id)
        archived_at: datetime | None = client.experiments.unarchive(experiment.id).archived_at
        tags: tuple[str, ...] = experiment.tags
        tagged: tally.Paginator[tally.Experiment] = client.experiments.list(tag="a", include_archived=True)
        folder = client.folders.archive(folder.id)
        folder = client.folders.unarchive(folder.id)
        all_folders: tally.Paginator[tally.Folder] = client.folders.list(include_archived=True)
        client.annotations.delete(experiment.id, note.id)
        del archived_at, tags, tagged, all_folders
        del health, source, name, running, items, cursor, conflicts, value, resume, row_values, entry, counts
        del token, revoked, note, notes, request_id, as_dict, ident
        fetched: tally.Experiment = client.request("getExperiment", experiment_id=experiment.id, timeout=2.0)
        del fetched


async def async_usage() -> None:
    async with AsyncTally("local") as client:
        experiment: tally.AsyncExperiment = await client.experiments.get("exp_1")
        points: tally.AsyncPaginator[tally.MetricPoint] = client.metrics.list(experiment.id, limit=5)
        async for point in points:
            step: int | None = point.step
        async for page in client.folders.list().pages():
            data: tuple[tally.AsyncFolder, ...] = page.data
        result: tally.IngestResult = await client.metrics.ingest(
            experiment.id, [{"name": "m", "value": 1, "step": 0}]
        )
        raw: tally.RawResponse[tally.Health] = await client.with_raw_response(client.health)()
        copy: AsyncTally = client.with_options(ingest_timeout=120.0)
        fetched: tally.AsyncExperiment = await client.request("getExperiment", experiment_id=experiment.id)
        experiment = await client.experiments.update(experiment.id, description=None)
        experiment = await client.experiments.archive(experiment.id)
        await client.annotations.delete(experiment.id, "ann_1")
        del step, data, result, raw, copy, fetched


def objects_that_act() -> None:
    """Returned objects carry sync methods under Tally; their metadata is read-only at any depth."""
    with Tally() as client:
        experiment: tally.Experiment = client.experiments.get("exp_1")
        experiment = experiment.update(name="n", metadata={"lr": 0.1}, tags=None, timeout=2.0)
        experiment = experiment.archive(idempotency_key="k").unarchive()
        experiment = experiment.set_status(tally.ExperimentStatus.COMPLETED, reopen=False)
        experiment = experiment.move(None, max_retries=0)
        summary: tally.ExperimentSummary = experiment.summary(name="loss")
        series: tally.MetricSeries = experiment.series("loss", max_points=100)
        points: tally.Paginator[tally.MetricPoint] = experiment.metrics.list(name="loss", limit=10)
        notes: tally.Paginator[tally.Annotation] = experiment.annotations.list(page_size=10)
        for note in notes:
            note.delete()
        folder: tally.Folder = client.folders.get("fld_1").archive().unarchive()
        inside: tally.Paginator[tally.Experiment] = folder.experiments.list(status="running")
        lr: object = experiment.metadata["lr"]
        experiment.metadata["lr"] = 2  # type: ignore[index]
        del summary, series, points, inside, lr


async def async_objects_that_act() -> None:
    """Under AsyncTally the same methods are awaitable."""
    async with AsyncTally() as client:
        experiment: tally.AsyncExperiment = await client.experiments.get("exp_1")
        experiment = await experiment.update(description=None, idempotency_key="k")
        experiment = await (await experiment.archive()).unarchive()
        experiment = await experiment.set_status("running", reopen=True)
        experiment = await experiment.move("fld_1")
        summary: tally.ExperimentSummary = await experiment.summary()
        series: tally.MetricSeries = await experiment.series("loss", min_step=0)
        points: tally.AsyncPaginator[tally.MetricPoint] = experiment.metrics.list(name="loss")
        async for note in experiment.annotations.list():
            await note.delete(timeout=1.0)
        folder: tally.AsyncFolder = await (await client.folders.get("fld_1")).archive()
        inside: tally.AsyncPaginator[tally.AsyncExperiment] = folder.experiments.list(include_archived=True)
        try:
            await experiment.update(name="x")
        except tally.UnboundObjectError as error:
            message: str = error.message
            del message
        del summary, series, points, inside


def errors() -> list[object]:
    seen: list[object] = []
    try:
        Tally()
    except tally.ConfigurationError as error:
        message: str = error.message
        seen.append(message)
    except tally.RateLimitError as error:
        wait: float | None = error.retry_after
        status: int | None = error.status_code
        code: str | None = error.code
        seen.extend([wait, status, code])
    except tally.APIConnectionError as error:
        url: str | None = error.url
        seen.append(url)
    with tally.retries.testing() as waits:
        recorded: list[float] = waits
        seen.append(recorded)
    return seen


def frames() -> None:
    import polars as pl

    with Tally() as client:
        result: tally.CompareResult = client.metrics.compare([{"experiment_id": "e", "name": "loss"}])
        by_step: pl.DataFrame = result.to_polars(labels=["a"])
        listing: pl.DataFrame = client.metrics.list("e", name="loss").to_polars()
        table = result.to_pandas()
        points = client.metrics.list("e").to_pandas()
        series: tally.MetricSeries = client.metrics.series("e", "loss", max_points=500, min_step=10)
        bucket: tally.MetricSeriesBucket = series.buckets[0]
        buckets: pl.DataFrame = series.to_polars()
        del by_step, listing, table, points, bucket, buckets


async def async_frames() -> None:
    import polars as pl

    async with AsyncTally() as client:
        listing: pl.DataFrame = await client.metrics.list("e").to_polars()
        series: tally.MetricSeries = await client.metrics.series("e", "loss", metadata_key="split")
        del listing, series


def training_loop() -> None:
    from tally.run import FlushTimeoutError, Run, RunStatus

    with Tally(offline=True) as client, client.run("typed", metadata={"lr": 0.1}, durability="power") as run:
        typed_run: Run = run
        typed_run.log({"train/loss": 0.5, "lr": 1}, step=0, metadata={"split": "train"})
        run.annotate("note", step=0)
        try:
            run.flush(timeout=1.0)
        except FlushTimeoutError as error:
            pending: str = error.message
            del pending
        status: RunStatus = run.status()
        experiment_id: str | None = run.id
        count: int = status.pending
        del experiment_id, count


def config_usage() -> None:
    config: tally.ClientConfig = tally.ClientConfig.resolve(timeout=5.0)
    config = tally.ClientConfig.from_env().replace(max_retries=1)
    config = tally.ClientConfig(api_key="tk_org_x", base_url="http://127.0.0.1:8787")
    with Tally(config=config) as client:
        same: tally.ClientConfig = client.config
    async_client = AsyncTally(config=config, logger=None)
    text: str | None = tally.NotFoundError.response_text
    body: object = tally.ResponseValidationError.body
    cause: BaseException | None = tally.ResponseValidationError.cause
    header: str | None = tally.NotFoundError.headers.get("x-request-id")
    del same, async_client, text, body, cause, header


def default_client_usage() -> None:
    tally.configure(api_key="tk_org_x", base_url="http://127.0.0.1:8787", timeout=None, max_retries=1)
    experiments: tally.Paginator[tally.Experiment] = tally.experiments.list(status="running")
    folder: tally.Folder = tally.folders.create("f")
    health: tally.Health = tally.health()
    status: tally.AuthStatus = tally.auth.status()
    notes: tally.Paginator[tally.Annotation] = tally.annotations.list("exp_x")
    del experiments, folder, health, status, notes


def distributed_ranks_and_groups() -> None:
    with Tally() as client:
        with client.run("typed", rank=0, group="job-1") as run:
            run.log({"train/loss": 0.5})
        why: str | None = run.status().inactive
        ranks: list[tally.Experiment] = list(client.experiments.list(group="job-1"))
        group: str | None = ranks[0].group
        compared: tally.CompareResult = client.metrics.compare_group(
            "job-1", "train/loss", metadata={"a": "b"}
        )
        made: tally.Experiment = client.experiments.create("typed-rank0", group="job-1")
        print(why, group, compared.series, made.id)


def training_loop_steps_resume_config() -> None:
    from tally.run import ResumeError, RunRejectedError

    with Tally() as client:
        try:
            run = client.run("typed", resume="allow", config={"optim": {"lr": 0.1}}, tags=["a"])
        except ResumeError:
            return
        with run:
            run.log({"train/loss": 0.5}, commit=False)
            run.log({"train/acc": 0.9})
            next_step: int = run.step
            lr: object = run.config["optim.lr"]
            run.config.update(epochs=3)
            try:
                run.flush(timeout=1.0)
            except RunRejectedError as error:
                refused: int = error.rejected
                reasons: list[str] = error.reasons
                del refused, reasons
            del next_step, lr
        client.experiments.update_status(run.id or "", "running", reopen=True)


def response_cache_usage() -> None:
    with Tally() as client:
        cache: tally.ResponseCache = client.cache
        cache.enable(path="/tmp/tally-cache.sqlite3", max_bytes=64 * 2**20)
        stats: tally.CacheStats = cache.stats()
        counted: tuple[int, int, int, int] = (stats.hits, stats.misses, stats.bytes, stats.entries)
        cache.clear()
        cache.disable()
        del counted


async def async_accessor_usage() -> None:
    with Tally() as client:
        view: AsyncTally = client.async_
        experiment: tally.AsyncExperiment = await client.async_.experiments.get("exp_x")
        names: list[str] = [item.name async for item in view.experiments.list(limit=3)]
        quick: AsyncTally = client.with_options(timeout=1.0).async_
        result: tally.IngestResult = await quick.metrics.ingest(experiment.id, [{"name": "n", "value": 1.0}])
        await view.close()
        del names, result


def training_loop_capture_and_system_metrics() -> None:
    with Tally() as client:
        with client.run(
            "typed", capture=tally.Capture(git=False, packages=False), system_metrics_interval=30
        ) as run:
            run.log({"train/loss": 0.5})
        with client.run("typed", capture=False, system_metrics_interval=0) as run:
            run.log({"train/loss": 0.5})
        all_off: tally.Capture = tally.Capture.none()
        del all_off
