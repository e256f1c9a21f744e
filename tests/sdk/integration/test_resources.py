"""Every method of the SDK against the live reference server, with `Tally` and with `AsyncTally`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import tally
from tally import AsyncTally, Tally
from tally_server import RunningServer

from ..conftest import AnyClient, acting, call, collect, collect_pages, unique

pytestmark = pytest.mark.integration


async def test_health_and_auth(client: AnyClient) -> None:
    health = await call(client.health())
    assert isinstance(health, tally.Health)
    assert health.status == "ok"
    status = await call(client.auth.status())
    assert isinstance(status, tally.AuthStatus)
    assert status.key_kind == tally.KeyKind.ORG
    assert status.experiment_id is None
    assert status.credential_source == "argument"


async def test_folders(client: AnyClient) -> None:
    parent = await call(client.folders.create(unique("parent"), description="top", metadata={"team": "x"}))
    assert isinstance(parent, acting(client, "Folder"))
    assert parent.parent_id is None
    assert parent.description == "top"
    assert parent.metadata == {"team": "x"}
    child = await call(client.folders.create(unique("child"), parent_id=parent.id))
    assert child.parent_id == parent.id
    assert (await call(client.folders.get(child.id))) == child

    patched = await call(client.folders.patch(child.id, description="new", metadata={"k": "v"}))
    assert patched.description == "new"
    assert patched.metadata == {"k": "v"}
    cleared = await call(client.folders.patch(child.id, description=None))
    assert cleared.description is None
    assert cleared.metadata == {"k": "v"}
    with pytest.raises(ValueError, match="needs description"):
        await call(client.folders.patch(child.id))

    renamed = await call(client.folders.rename(child.id, unique("renamed")))
    assert renamed.name.startswith("renamed-")
    moved = await call(client.folders.move(child.id, None))
    assert moved.parent_id is None
    moved_back = await call(client.folders.move(child.id, parent.id))
    assert moved_back.parent_id == parent.id
    children = await collect(client.folders.list(parent_id=parent.id))
    assert [folder.id for folder in children] == [child.id]
    with pytest.raises(tally.ConflictError) as caught:
        await call(client.folders.move(parent.id, child.id))  # a cycle
    assert caught.value.status_code == 409
    assert caught.value.request_id


async def test_experiments(client: AnyClient) -> None:
    folder = await call(client.folders.create(unique("exps")))
    prefix = unique("exp")
    before = datetime.now(UTC) - timedelta(minutes=5)
    first = await call(client.experiments.create(f"{prefix}-a", folder_id=folder.id, metadata={"lr": 0.1}))
    second = await call(client.experiments.create(f"{prefix}-b", description="second"))
    assert isinstance(first, acting(client, "Experiment"))
    assert first.status == tally.ExperimentStatus.RUNNING
    assert first.ended_at is None
    assert (await call(client.experiments.get(first.id))) == first

    listed = await collect(client.experiments.list(name_prefix=prefix))
    assert [e.id for e in listed] == [first.id, second.id]
    in_folder = await collect(client.experiments.list(folder_id=folder.id))
    assert [e.id for e in in_folder] == [first.id]
    recent = await collect(client.experiments.list(name_prefix=prefix, created_after=before))
    assert len(recent) == 2
    assert await collect(client.experiments.list(name_prefix=prefix, created_before=before)) == []

    moved = await call(client.experiments.move(second.id, folder.id))
    assert moved.folder_id == folder.id
    done = await call(client.experiments.update_status(first.id, "completed"))
    assert done.status == "completed"
    assert done.ended_at is not None
    completed = await collect(
        client.experiments.list(name_prefix=prefix, status=tally.ExperimentStatus.COMPLETED)
    )
    assert [e.id for e in completed] == [first.id]
    with pytest.raises(tally.ConflictError) as caught:
        await call(client.experiments.update_status(first.id, "running"))
    assert caught.value.code == "invalid_transition"
    with pytest.raises(ValueError, match="status must be one of"):
        await call(client.experiments.update_status(first.id, "paused"))
    with pytest.raises(tally.NotFoundError):
        await call(client.experiments.get("exp_doesnotexist"))


async def test_experiment_summary(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("summary")))
    assert (await call(client.experiments.summary(experiment.id))).metrics == ()
    events = [{"name": "loss", "value": v, "step": s} for s, v in ((0, 2.0), (5, 0.5), (3, 0.2))]
    events.append({"name": "acc", "value": 0.9, "step": 1, "metadata": {"split": "val"}})
    await call(client.metrics.ingest(experiment.id, events))
    found = await call(client.experiments.summary(experiment.id))
    assert isinstance(found, tally.ExperimentSummary)
    assert found.experiment_id == experiment.id
    assert [(m.name, m.metadata) for m in found.metrics] == [("acc", {"split": "val"}), ("loss", {})]
    loss = found.metrics[1]
    assert isinstance(loss, tally.MetricSummary)
    assert (loss.count, loss.first_step, loss.last_step) == (3, 0, 5)
    assert (loss.last, loss.min, loss.max) == (0.5, 0.2, 2.0)
    assert isinstance(loss.last_logged_at, datetime)
    only = await call(client.experiments.summary(experiment.id, name="loss"))
    assert only.metrics == (loss,)
    with pytest.raises(tally.NotFoundError):
        await call(client.experiments.summary("exp_doesnotexist"))


async def test_experiments_in_order(client: AnyClient) -> None:
    prefix = unique("ordered")
    made = [await call(client.experiments.create(f"{prefix}-{name}")) for name in ("b", "a", "c")]
    for experiment, loss in zip(made[:2], (0.3, 0.1), strict=True):
        await call(client.metrics.ingest(experiment.id, [{"name": "val/loss", "value": loss, "step": 1}]))
    ids = [e.id for e in made]

    async def listed(order_by: str, **more: object) -> list[str]:
        found = await collect(
            client.experiments.list(name_prefix=prefix, order_by=order_by, page_size=1, **more)
        )
        return [e.id for e in found]

    assert await listed("-created_at") == ids[::-1]
    assert await listed("name") == [ids[1], ids[0], ids[2]]
    assert await listed("metric:val/loss:min") == [ids[1], ids[0], ids[2]]  # without it: last
    assert await listed("-metric:val/loss:last") == [ids[0], ids[1], ids[2]]
    with pytest.raises(tally.BadRequestError, match="order_by"):
        await listed("metric:val/loss:median")


async def test_experiments_by_metadata(client: AnyClient) -> None:
    prefix = unique("hyper")
    made = [
        await call(client.experiments.create(f"{prefix}-{i}", metadata=m))
        for i, m in enumerate(
            [
                {"optim": {"lr": 0.0003, "name": "adam"}},
                {"optim": {"lr": "0.0003"}, "fast": True},
                {"fast": None},
            ]
        )
    ]

    async def ids(**filters: object) -> list[str]:
        return [e.id for e in await collect(client.experiments.list(name_prefix=prefix, **filters))]

    assert await ids(metadata_key="optim.lr", metadata_value=0.0003) == [made[0].id]
    assert await ids(metadata_key="optim.lr", metadata_value="0.0003") == [made[1].id]
    assert await ids(metadata_key="optim.name", metadata_value="adam") == [made[0].id]
    assert await ids(metadata_key="fast", metadata_value=True) == [made[1].id]
    assert await ids(metadata_key="fast", metadata_value=None) == [made[2].id]
    assert await ids(metadata_key="fast") == [made[1].id, made[2].id]
    with pytest.raises(TypeError, match="metadata_value"):
        await ids(metadata_key="fast", metadata_value=[1])


async def test_metrics_ingest_list_compare(client: AnyClient) -> None:
    a = await call(client.experiments.create(unique("metrics-a")))
    b = await call(client.experiments.create(unique("metrics-b")))
    events = [{"name": "train/loss", "value": 1.0 / (step + 1), "step": step} for step in range(30)]
    events.append({"name": "val/acc", "value": 0.5, "step": 0, "metadata": {"split": "val"}})
    typed = [tally.MetricEvent(name="train/loss", value=2.0, step=step) for step in range(10)]

    result = await call(client.metrics.ingest(a.id, events))
    assert result == tally.IngestResult(accepted=31, duplicates=0, conflicts=())
    again = await call(client.metrics.ingest(a.id, events))
    assert (again.accepted, again.duplicates) == (0, 31)
    assert (await call(client.metrics.ingest(b.id, typed))).accepted == 10

    points = await collect(client.metrics.list(a.id, name="train/loss", min_step=5, max_step=9))
    assert [p.step for p in points] == [5, 6, 7, 8, 9]
    assert points[0].client_event_id == tally.event_id(a.id, "train/loss", 5)
    labelled = await collect(client.metrics.list(a.id, metadata_key="split", metadata_value="val"))
    assert [(p.name, p.metadata) for p in labelled] == [("val/acc", {"split": "val"})]

    comparison = await call(
        client.metrics.compare(
            [
                {"experiment_id": a.id, "name": "train/loss"},
                tally.SeriesSelector(experiment_id=b.id, name="train/loss"),
            ],
            min_step=0,
            max_step=11,
            limit=100,
        )
    )
    assert isinstance(comparison, tally.CompareResult)
    assert [s.points for s in comparison.series] == [12, 10]
    assert comparison.rows[0].values == (1.0, 2.0)
    assert comparison.rows[-1].step == 11
    assert comparison.rows[-1].values[1] is None
    assert comparison.truncated is False


async def test_ingest_conflicts_and_local_validation(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("conflicts")))
    await call(client.metrics.ingest(experiment.id, [{"name": "m", "value": 1.0, "client_event_id": "same"}]))
    result = await call(
        client.metrics.ingest(
            experiment.id,
            [{"name": "m", "value": 3.0, "step": 1}, {"name": "m", "value": 2.0, "client_event_id": "same"}],
        )
    )
    assert result.accepted == 1
    assert [(c.index, c.client_event_id) for c in result.conflicts] == [(1, "same")]
    with pytest.raises(ValueError, match=r"events\[1\]\.value"):
        await call(
            client.metrics.ingest(
                experiment.id,
                [{"name": "m", "value": 1.0, "step": 0}, {"name": "m", "value": float("nan"), "step": 1}],
            )
        )
    with pytest.raises(ValueError, match=r"events\[0\] has neither client_event_id nor step"):
        await call(client.metrics.ingest(experiment.id, [{"name": "m", "value": 1.0}]))


async def test_ingest_splits_large_batches(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("split")))
    events = [{"name": "m", "value": float(i), "step": i} for i in range(10_500)]
    events[10_200] = {"name": "m", "value": 1.5, "client_event_id": "dup"}
    events[10_300] = {"name": "m", "value": 2.5, "client_event_id": "dup"}
    result = await call(client.metrics.ingest(experiment.id, events))
    assert result.accepted + result.duplicates + len(result.conflicts) == 10_500
    assert [c.index for c in result.conflicts] == [10_300]
    catalog = await collect(client.metric_catalog.list(experiment_id=experiment.id))
    assert catalog[0].count == 10_499


async def test_metric_catalog(client: AnyClient) -> None:
    folder = await call(client.folders.create(unique("catalog")))
    experiment = await call(client.experiments.create(unique("catalog"), folder_id=folder.id))
    events = [
        {"name": "cat/loss", "value": 1.0, "step": s, "metadata": {"split": split}}
        for s in range(3)
        for split in ("train", "val")
    ]
    await call(client.metrics.ingest(experiment.id, events))
    entries = await collect(client.metric_catalog.list(folder_id=folder.id, name_prefix="cat/"))
    assert [(e.name, e.count, e.experiment_count, e.metadata_keys) for e in entries] == [
        ("cat/loss", 6, 1, ("split",))
    ]
    values = await collect(
        client.metric_catalog.inspect_values("cat/loss", "split", experiment_id=experiment.id)
    )
    assert [(v.value, v.count) for v in values] == [("train", 3), ("val", 3)]
    by_folder = await collect(
        client.metric_catalog.inspect_values("cat/loss", "split", folder_id=folder.id, limit=1)
    )
    assert [v.value for v in by_folder] == ["train"]


async def test_ingestion_keys_and_forget(client: AnyClient, live_server: RunningServer) -> None:
    experiment = await call(client.experiments.create(unique("keys")))
    created = await call(client.ingestion_keys.create(experiment.id, name="trainer"))
    assert isinstance(created, tally.CreatedIngestionKey)
    assert created.token.startswith("tk_ing_")
    assert created.token.endswith(created.token_hint)
    assert created.token not in repr(created)
    keys = await collect(client.ingestion_keys.list(experiment.id))
    assert [k.id for k in keys] == [created.id]
    revoked = await call(client.ingestion_keys.revoke(created.id))
    assert revoked.revoked_at is not None

    # The SDK mints its own key on first ingest, caches it, and mints again after forget().
    await call(client.metrics.ingest(experiment.id, [{"name": "m", "value": 1.0, "step": 0}]))
    await call(client.metrics.ingest(experiment.id, [{"name": "m", "value": 1.0, "step": 1}]))
    assert len(await collect(client.ingestion_keys.list(experiment.id))) == 2
    client.ingestion_keys.forget(experiment.id)
    await call(client.metrics.ingest(experiment.id, [{"name": "m", "value": 1.0, "step": 2}]))
    assert len(await collect(client.ingestion_keys.list(experiment.id))) == 3

    # A revoked ingestion key is refused with a clear error.
    holder_cls = Tally if isinstance(client, Tally) else AsyncTally
    holder = holder_cls(api_key=created.token, base_url=live_server.url, max_retries=0)
    try:
        with pytest.raises(tally.AuthenticationError) as caught:
            await call(holder.auth.status())
        assert caught.value.code == "unauthenticated"
        assert created.token not in str(caught.value)
    finally:
        await call(holder.close())


async def test_revoked_cached_key_is_replaced_once(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("revoked")))
    await call(client.metrics.ingest(experiment.id, [{"name": "m", "value": 1.0, "step": 0}]))
    (sdk_key,) = await collect(client.ingestion_keys.list(experiment.id))
    await call(client.ingestion_keys.revoke(sdk_key.id))
    result = await call(client.metrics.ingest(experiment.id, [{"name": "m", "value": 1.0, "step": 1}]))
    assert result.accepted == 1
    keys = await collect(client.ingestion_keys.list(experiment.id))
    assert [k.revoked_at is None for k in keys] == [False, True]


async def test_annotations(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("notes")))
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    note = await call(
        client.annotations.create(experiment.id, "lr drop", step=5, timestamp=stamp, metadata={"by": "me"})
    )
    assert isinstance(note, acting(client, "Annotation"))
    assert (note.step, note.timestamp, note.metadata) == (5, stamp, {"by": "me"})
    same = await call(
        client.annotations.create(experiment.id, "lr drop", step=5, timestamp=stamp, metadata={"by": "me"})
    )
    assert same.id == note.id  # the deterministic client_event_id makes it idempotent
    other = await call(client.annotations.create(experiment.id, "free note", client_event_id="my-note-1"))
    assert other.client_event_id == "my-note-1"
    assert other.step is None
    with pytest.raises(tally.ConflictError):
        await call(client.annotations.create(experiment.id, "changed text", client_event_id="my-note-1"))
    notes = await collect(client.annotations.list(experiment.id))
    assert [n.id for n in notes] == [note.id, other.id]


async def test_pagination_limit_pages_and_resume(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("pages")))
    await call(
        client.metrics.ingest(experiment.id, [{"name": "p", "value": 0.0, "step": s} for s in range(25)])
    )
    everything = [p.step for p in await collect(client.metrics.list(experiment.id, page_size=10))]
    assert everything == list(range(25))

    paginator = client.metrics.list(experiment.id, page_size=10, limit=15)
    first = [p.step for p in await collect(paginator)]
    assert first == list(range(15))
    assert paginator.has_more
    assert paginator.next_cursor is not None
    rest = [
        p.step
        for p in await collect(client.metrics.list(experiment.id, page_size=10, cursor=paginator.next_cursor))
    ]
    assert rest == list(range(15, 25))  # exact: the limit never stops mid-page

    pages = await collect_pages(client.metrics.list(experiment.id, page_size=10))
    assert [len(page.data) for page in pages] == [10, 10, 5]
    assert pages[-1].next_cursor is None
    empty = client.metrics.list(experiment.id, limit=0)
    assert await collect(empty) == []


async def test_with_options_and_raw_response(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("raw")))
    quick = client.with_options(timeout=5.0, max_retries=0)
    assert quick.max_retries == 0
    assert quick.timeout == 5.0
    assert client.max_retries == tally.retries.DEFAULT_MAX_RETRIES
    assert (await call(quick.experiments.get(experiment.id))).id == experiment.id
    raw = await call(client.with_raw_response(client.experiments.get)(experiment.id))
    assert isinstance(raw, tally.RawResponse)
    assert raw.status_code == 200
    assert raw.request_id
    assert raw.request_id.startswith("req_")
    assert raw.parsed.id == experiment.id
    assert raw.headers["content-type"].startswith("application/json")
    key = unique("idem")
    created = await call(client.with_raw_response(client.folders.create)(unique("f"), idempotency_key=key))
    assert created.status_code == 201
    assert not created.replayed
