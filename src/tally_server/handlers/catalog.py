"""The metric catalog: names with counts, and the distinct values of one metadata key."""

from __future__ import annotations

from tally_server._call import Call, Handler, Reply, page_reply
from tally_server.pagination import decode_cursor

__all__ = ["HANDLERS"]


def list_metric_catalog(call: Call) -> Reply:
    query = call.query
    after = decode_cursor("catalog", query.get("cursor"))
    page = call.repo.list_metric_catalog(
        call.org_pk,
        query.get("experiment_id"),
        query.get("folder_id"),
        query.get("name_prefix"),
        query["page_size"],
        after,
    )
    return page_reply("catalog", page)


def inspect_metric_catalog_values(call: Call) -> Reply:
    query = call.query
    after = decode_cursor("values", query.get("cursor"))
    page = call.repo.inspect_metric_values(
        call.org_pk,
        query["metric_name"],
        query["metadata_key"],
        query.get("experiment_id"),
        query.get("folder_id"),
        query["page_size"],
        after,
    )
    return page_reply("values", page)


HANDLERS: dict[str, Handler] = {
    "listMetricCatalog": list_metric_catalog,
    "inspectMetricCatalogValues": inspect_metric_catalog_values,
}
