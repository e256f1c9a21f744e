"""Metrics: ingest, list, series, compare, export."""

from __future__ import annotations

from tally_server._call import Call, Handler, Reply, Stream, page_reply
from tally_server._spec import FieldError
from tally_server.auth import check_experiment
from tally_server.errors import invalid_request
from tally_server.export import CHUNK_ROWS, NDJSON, export_chunks
from tally_server.pagination import decode_cursor

__all__ = ["HANDLERS"]


def ingest_metrics(call: Call) -> Reply:
    principal = call.principal
    if principal is None or principal.experiment_pk is None or principal.experiment_id is None:
        raise RuntimeError("an ingestion operation without an ingestion key")  # auth.check_kind prevents it
    check_experiment(call.repo, principal, call.path["experiment_id"])
    batch = call.body  # an IngestBatch: typed and validated (tally_server.ingest_batch)
    result = call.repo.ingest_metrics(principal.experiment_pk, principal.experiment_id, batch)
    return Reply(200, result)


def list_metrics(call: Call) -> Reply:
    query = call.query
    if query.get("metadata_value") is not None and query.get("metadata_key") is None:
        raise invalid_request([FieldError("metadata_value", "needs metadata_key")])
    after = decode_cursor("metrics", query.get("cursor"))
    page = call.repo.list_metrics(call.org_pk, call.path["experiment_id"], query, query["page_size"], after)
    return page_reply("metrics", page)


def get_metric_series(call: Call) -> Reply:
    query = dict(call.query)
    if query.get("metadata_value") is not None and query.get("metadata_key") is None:
        raise invalid_request([FieldError("metadata_value", "needs metadata_key")])
    min_step, max_step = query.get("min_step"), query.get("max_step")
    if min_step is not None and max_step is not None and min_step > max_step:
        raise invalid_request([FieldError("max_step", f"must be at least min_step ({min_step})")])
    return Reply(200, call.repo.metric_series(call.org_pk, call.path["experiment_id"], query))


def compare_metrics(call: Call) -> Reply:
    body = call.body
    limit = body.get("limit", call.operation.body_default("limit"))  # the contract's default, when not sent
    result = call.repo.compare_metrics(
        call.org_pk, body["series"], body.get("min_step"), body.get("max_step"), int(limit)
    )
    return Reply(200, result)


def export_metrics(call: Call) -> Reply:
    """Every point, streamed (see `tally_server.export`). The first chunk is read here, in the pipeline, so that
    an unknown experiment or a bad filter is still an enveloped error before the answer starts."""
    query = call.query
    if query.get("metadata_value") is not None and query.get("metadata_key") is None:
        raise invalid_request([FieldError("metadata_value", "needs metadata_key")])
    experiment_id = call.path["experiment_id"]
    media_type = call.media_type or NDJSON
    first = call.repo.list_metrics(call.org_pk, experiment_id, query, CHUNK_ROWS, None)
    chunks = export_chunks(call.repo, call.org_pk, experiment_id, dict(query), media_type, first)
    return Reply(200, Stream(chunks, media_type))


HANDLERS: dict[str, Handler] = {
    "ingestMetrics": ingest_metrics,
    "listMetrics": list_metrics,
    "getMetricSeries": get_metric_series,
    "compareMetrics": compare_metrics,
    "exportMetrics": export_metrics,
}
