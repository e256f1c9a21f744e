"""Annotations: list, create with an ingestion key (idempotent by `client_event_id`), get, update, delete."""

from __future__ import annotations

from tally_server._call import Call, Handler, Reply, page_reply
from tally_server.auth import check_experiment
from tally_server.pagination import decode_cursor

__all__ = ["HANDLERS"]


def list_annotations(call: Call) -> Reply:
    after = decode_cursor("annotations", call.query.get("cursor"))
    page = call.repo.list_annotations(call.org_pk, call.path["experiment_id"], call.query["page_size"], after)
    return page_reply("annotations", page)


def create_annotation(call: Call) -> Reply:
    principal = call.principal
    if principal is None or principal.experiment_pk is None or principal.experiment_id is None:
        raise RuntimeError("an ingestion operation without an ingestion key")  # auth.check_kind prevents it
    check_experiment(call.repo, principal, call.path["experiment_id"])
    created, annotation = call.repo.create_annotation(
        principal.experiment_pk, principal.experiment_id, call.body
    )
    return Reply(201 if created else 200, annotation)


def get_annotation(call: Call) -> Reply:
    path = call.path
    return Reply(200, call.repo.get_annotation(call.org_pk, path["experiment_id"], path["annotation_id"]))


def update_annotation(call: Call) -> Reply:
    path = call.path
    annotation = call.repo.update_annotation(
        call.org_pk, path["experiment_id"], path["annotation_id"], call.body
    )
    return Reply(200, annotation)


def delete_annotation(call: Call) -> Reply:
    call.repo.delete_annotation(call.org_pk, call.path["experiment_id"], call.path["annotation_id"])
    return Reply(204, None)


HANDLERS: dict[str, Handler] = {
    "listAnnotations": list_annotations,
    "createAnnotation": create_annotation,
    "getAnnotation": get_annotation,
    "updateAnnotation": update_annotation,
    "deleteAnnotation": delete_annotation,
}
