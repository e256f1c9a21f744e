"""Ingestion keys: list (revoked included), create (token shown once), revoke (idempotent).

No token is ever stored, not even in the idempotency record of its creation: the record keeps the answer with
`token: null` (`redact_created_key`), and a replay issues the same key a new token (`reissue_created_key`).
"""

from __future__ import annotations

from typing import Any

from tally_server._call import Call, Handler, Reply, page_reply
from tally_server._json import dumps, loads_trusted
from tally_server.pagination import decode_cursor
from tally_server.storage.repository import Repository

__all__ = ["HANDLERS", "redact_created_key", "reissue_created_key"]


def list_ingestion_keys(call: Call) -> Reply:
    after = decode_cursor("ingestion_keys", call.query.get("cursor"))
    page = call.repo.list_ingestion_keys(
        call.org_pk, call.path["experiment_id"], call.query["page_size"], after
    )
    return page_reply("ingestion_keys", page)


def create_ingestion_key(call: Call) -> Reply:
    body: dict[str, Any] = call.body if isinstance(call.body, dict) else {}
    created = call.repo.create_ingestion_key(
        call.org_pk, call.path["experiment_id"], body.get("name"), body.get("expires_in_seconds")
    )
    return Reply(201, created)


def redact_created_key(answer: bytes) -> bytes:
    """The answer to store for idempotency: the created key without its token."""
    data = loads_trusted(answer)
    data["token"] = None
    return dumps(data)


def reissue_created_key(repo: Repository, org_pk: int, stored: bytes) -> bytes:
    """The answer to a replay: the stored key with a new token (ConflictError if it was revoked since)."""
    return dumps(repo.reissue_ingestion_token(org_pk, loads_trusted(stored)["id"]))


def get_ingestion_key(call: Call) -> Reply:
    return Reply(200, call.repo.get_ingestion_key(call.org_pk, call.path["key_id"]))


def revoke_ingestion_key(call: Call) -> Reply:
    return Reply(200, call.repo.revoke_ingestion_key(call.org_pk, call.path["key_id"]))


HANDLERS: dict[str, Handler] = {
    "listIngestionKeys": list_ingestion_keys,
    "createIngestionKey": create_ingestion_key,
    "getIngestionKey": get_ingestion_key,
    "revokeIngestionKey": revoke_ingestion_key,
}
