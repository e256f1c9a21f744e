"""Experiments: list, create, get, update, update status, move, archive, unarchive, delete, summary."""

from __future__ import annotations

from typing import Any

from tally_server._call import Call, Handler, Reply
from tally_server._spec import FieldError
from tally_server.errors import ApiError, invalid_request
from tally_server.ordering import parse_order
from tally_server.pagination import decode_experiments_cursor, encode_experiments_cursor
from tally_server.storage.metadata_index import MetadataValueError, parse_value

__all__ = ["HANDLERS"]

_FILTERS = (
    "folder_id",
    "status",
    "name_prefix",
    "created_after",
    "created_before",
    "tag",
    "group",
    "include_archived",
)


def _metadata_filter(query: dict[str, Any]) -> tuple[str, Any] | None:
    """(path, None) for "has this key", (path, (kind, number, text)) for "at this value"; None without one."""
    key, value = query.get("metadata_key"), query.get("metadata_value")
    if value is not None and key is None:
        raise invalid_request([FieldError("metadata_value", "needs metadata_key")])
    if key is None:
        return None
    if value is None:
        return key, None
    try:
        return key, parse_value(value)
    except MetadataValueError as exc:
        raise invalid_request([FieldError("metadata_value", str(exc))]) from None


def list_experiments(call: Call) -> Reply:
    wanted = _metadata_filter(call.query)
    order = parse_order(call.query.get("order_by"))
    after = decode_experiments_cursor(order.text, order.cursor_family, call.query.get("cursor"))
    filters = {name: call.query.get(name) for name in _FILTERS}
    filters["order"] = order
    filters["metadata"] = wanted
    page = call.repo.list_experiments(call.org_pk, filters, call.query["page_size"], after)
    return Reply(
        200, {"data": page.items, "next_cursor": encode_experiments_cursor(order.text, page.next_key)}
    )


def create_experiment(call: Call) -> Reply:
    body = call.body
    experiment = call.repo.create_experiment(
        call.org_pk,
        body["name"],
        body.get("folder_id"),
        body.get("description"),
        body.get("metadata"),
        body.get("tags") or (),
        body.get("group"),
    )
    return Reply(201, experiment)


def get_experiment(call: Call) -> Reply:
    return Reply(200, call.repo.get_experiment(call.org_pk, call.path["experiment_id"]))


def update_experiment_status(call: Call) -> Reply:
    """`reopen: true` is the explicit terminal -> running transition (see the contract); the key that asks is
    recorded with it. The operation takes organisation keys only, so only they can reopen."""
    experiment_id = call.path["experiment_id"]
    status = call.body["status"]
    reopened_by = None
    if call.body.get("reopen"):
        if status != "running":  # schema-valid, so not a 400: a transition the contract does not have
            raise ApiError(
                409,
                "invalid_transition",
                f"reopen: true reopens to status 'running' only, not {status!r}; drop reopen to set {status!r}",
                {"to": status, "reopen": True},
            )
        assert call.principal is not None
        reopened_by = call.principal.key_id
    return Reply(
        200,
        call.repo.update_experiment_status(call.org_pk, experiment_id, status, reopened_by=reopened_by),
    )


def move_experiment(call: Call) -> Reply:
    experiment_id = call.path["experiment_id"]
    return Reply(200, call.repo.move_experiment(call.org_pk, experiment_id, call.body["folder_id"]))


def update_experiment(call: Call) -> Reply:
    return Reply(200, call.repo.update_experiment(call.org_pk, call.path["experiment_id"], call.body))


def archive_experiment(call: Call) -> Reply:
    return Reply(200, call.repo.set_experiment_archived(call.org_pk, call.path["experiment_id"], True))


def unarchive_experiment(call: Call) -> Reply:
    return Reply(200, call.repo.set_experiment_archived(call.org_pk, call.path["experiment_id"], False))


def delete_experiment(call: Call) -> Reply:
    call.repo.delete_experiment(call.org_pk, call.path["experiment_id"])
    return Reply(204, None)


def get_experiment_summary(call: Call) -> Reply:
    summary = call.repo.get_experiment_summary(
        call.org_pk, call.path["experiment_id"], call.query.get("name")
    )
    return Reply(200, summary)


HANDLERS: dict[str, Handler] = {
    "listExperiments": list_experiments,
    "createExperiment": create_experiment,
    "getExperiment": get_experiment,
    "updateExperimentStatus": update_experiment_status,
    "moveExperiment": move_experiment,
    "updateExperiment": update_experiment,
    "archiveExperiment": archive_experiment,
    "unarchiveExperiment": unarchive_experiment,
    "deleteExperiment": delete_experiment,
    "getExperimentSummary": get_experiment_summary,
}
