"""Ingestion keys: list (revoked included), create (token shown once), revoke (idempotent)."""

from __future__ import annotations

from tally_server._call import Call, Handler, Reply, page_reply
from tally_server.pagination import decode_cursor

__all__ = ["HANDLERS"]


def list_ingestion_keys(call: Call) -> Reply:
    after = decode_cursor("ingestion_keys", call.query.get("cursor"))
    page = call.repo.list_ingestion_keys(
        call.org_pk, call.path["experiment_id"], call.query["page_size"], after
    )
    return page_reply("ingestion_keys", page)


def create_ingestion_key(call: Call) -> Reply:
    name = call.body.get("name") if isinstance(call.body, dict) else None
    return Reply(201, call.repo.create_ingestion_key(call.org_pk, call.path["experiment_id"], name))


def revoke_ingestion_key(call: Call) -> Reply:
    return Reply(200, call.repo.revoke_ingestion_key(call.org_pk, call.path["key_id"]))


HANDLERS: dict[str, Handler] = {
    "listIngestionKeys": list_ingestion_keys,
    "createIngestionKey": create_ingestion_key,
    "revokeIngestionKey": revoke_ingestion_key,
}
