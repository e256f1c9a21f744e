"""Folders: list, create, get, patch, rename, move, archive, unarchive, delete (an empty one)."""

from __future__ import annotations

from tally_server._call import Call, Handler, Reply, page_reply
from tally_server.pagination import decode_cursor

__all__ = ["HANDLERS"]


def list_folders(call: Call) -> Reply:
    after = decode_cursor("folders", call.query.get("cursor"))
    query = call.query
    page = call.repo.list_folders(
        call.org_pk, query.get("parent_id"), query["page_size"], after, bool(query.get("include_archived"))
    )
    return page_reply("folders", page)


def create_folder(call: Call) -> Reply:
    body = call.body
    folder = call.repo.create_folder(
        call.org_pk, body["name"], body.get("parent_id"), body.get("description"), body.get("metadata")
    )
    return Reply(201, folder)


def get_folder(call: Call) -> Reply:
    return Reply(200, call.repo.get_folder(call.org_pk, call.path["folder_id"]))


def patch_folder(call: Call) -> Reply:
    return Reply(200, call.repo.patch_folder(call.org_pk, call.path["folder_id"], call.body))


def rename_folder(call: Call) -> Reply:
    return Reply(200, call.repo.rename_folder(call.org_pk, call.path["folder_id"], call.body["name"]))


def move_folder(call: Call) -> Reply:
    return Reply(200, call.repo.move_folder(call.org_pk, call.path["folder_id"], call.body["parent_id"]))


def archive_folder(call: Call) -> Reply:
    return Reply(200, call.repo.set_folder_archived(call.org_pk, call.path["folder_id"], True))


def unarchive_folder(call: Call) -> Reply:
    return Reply(200, call.repo.set_folder_archived(call.org_pk, call.path["folder_id"], False))


def delete_folder(call: Call) -> Reply:
    call.repo.delete_folder(call.org_pk, call.path["folder_id"])
    return Reply(204, None)


HANDLERS: dict[str, Handler] = {
    "listFolders": list_folders,
    "createFolder": create_folder,
    "getFolder": get_folder,
    "patchFolder": patch_folder,
    "renameFolder": rename_folder,
    "moveFolder": move_folder,
    "archiveFolder": archive_folder,
    "unarchiveFolder": unarchive_folder,
    "deleteFolder": delete_folder,
}
