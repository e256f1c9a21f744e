"""`client.request(...)`: any operation of the spec, through the client's credentials, retries, idempotency keys,
options and error mapping, against the live reference server, on both clients."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import tally_api_types
from tally_api.api.experiments import create_experiment, get_experiment

import tally
from tally_server import RunningServer

from ..conftest import AnyClient, acting, call, unique


async def test_by_operation_id_returns_the_public_type(client: AnyClient) -> None:
    created = await call(client.experiments.create(unique("req")))
    got = await call(client.request("getExperiment", experiment_id=created.id))
    assert type(got) is acting(client, "Experiment")
    assert got == created
    assert (await call(got.summary())).metrics == ()  # bound to the client, like the curated methods' objects
    assert tally.request_id(got) is not None
    page = await call(client.request("listExperiments", status="running", page_size=1000))
    assert isinstance(page, tally.Page)
    assert created.id in {e.id for e in page.data}
    assert all(type(e) is acting(client, "Experiment") for e in page.data)
    assert (await call(page.data[0].summary())).experiment_id == page.data[0].id


async def test_by_generated_module_with_a_body_and_options(client: AnyClient) -> None:
    name = unique("req-module")
    created = await call(
        client.request(
            create_experiment, body={"name": name, "metadata": {"lr": 0.1}}, timeout=5.0, max_retries=1
        )
    )
    assert (created.name, created.metadata) == (name, {"lr": 0.1})
    again = await call(client.request(get_experiment, experiment_id=created.id))
    assert again == created


async def test_a_public_request_struct_is_a_body_too(client: AnyClient) -> None:
    body = tally_api_types.CreateExperimentRequest(name=unique("req-struct"), description="typed")
    created = await call(client.request("createExperiment", body=body))
    assert created.description == "typed"


async def test_one_idempotency_key_per_call_and_raw_responses(client: AnyClient) -> None:
    body = {"name": unique("req-idem")}
    key = unique("req-idem-key")
    raw_request = client.with_raw_response(client.request)
    first = await call(raw_request("createExperiment", body=body, idempotency_key=key))
    second = await call(raw_request("createExperiment", body=body, idempotency_key=key))
    assert first.status_code == 201
    assert (first.replayed, second.replayed) == (False, True)
    assert first.parsed.id == second.parsed.id
    fresh = await call(client.request("createExperiment", body={"name": unique("req-idem")}))
    assert fresh.id != first.parsed.id  # without a key of the caller's, each call mints its own


async def test_sdk_subclasses_and_ingestion_keys(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("req-ingest")))
    events = [
        {"name": "loss", "value": 1.0 / (step + 1), "step": step, "client_event_id": f"e{step}"}
        for step in range(3)
    ]
    result = await call(
        client.request("ingestMetrics", experiment_id=experiment.id, body={"events": events}, sync=True)
    )
    assert type(result) is tally.IngestResult
    assert result.accepted == 3
    compared = await call(
        client.request("compareMetrics", body={"series": [{"experiment_id": experiment.id, "name": "loss"}]})
    )
    assert type(compared) is tally.CompareResult  # the SDK's subclass, with to_pandas()
    assert [row.step for row in compared.rows] == [0, 1, 2]
    note = await call(
        client.request(
            "createAnnotation",
            experiment_id=experiment.id,
            body={
                "text": "lr drop",
                "step": 1,
                "client_event_id": "note-1",
                "timestamp": datetime.now(UTC).isoformat(),
            },
        )
    )
    assert type(note) is acting(client, "Annotation")
    catalog = await call(client.request("listMetricCatalog", page_size=1000))
    assert all(type(entry) is tally.CatalogEntry for entry in catalog.data)


async def test_health_needs_no_key_and_errors_map(client: AnyClient, live_server: RunningServer) -> None:
    health = await call(client.request("getHealth"))
    assert type(health) is tally.Health
    with pytest.raises(tally.NotFoundError) as caught:
        await call(client.request("getExperiment", experiment_id="exp_missing"))
    assert caught.value.request_id


async def test_bad_input_names_the_operation_and_the_fix(client: AnyClient) -> None:
    with pytest.raises(ValueError, match="did you mean 'getExperiment'"):
        await call(client.request("getExperiments", experiment_id="x"))
    with pytest.raises(
        TypeError, match=r"getExperiment takes no argument colour; its parameters are experiment_id"
    ):
        await call(client.request("getExperiment", experiment_id="x", colour="red"))
    with pytest.raises(
        TypeError, match=r"getExperiment\(experiment_id, if_none_match=\.\.\.\).*experiment_id"
    ):
        await call(client.request("getExperiment"))
    with pytest.raises(ValueError, match="listExperiments: status must be one of cancelled, completed"):
        await call(client.request("listExperiments", status="sleeping"))
    with pytest.raises(ValueError, match="idempotency_key applies to POST, PATCH and DELETE only"):
        await call(client.request("getExperiment", experiment_id="x", idempotency_key="k"))
    with pytest.raises(TypeError, match="operationId"):
        await call(client.request(42))  # type: ignore[arg-type]
