"""The SQLite backend of `Repository`.

SQL is assembled only from constant fragments of this module; every value is a bound parameter.
"""

# ruff: noqa: S608

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import msgspec

from tally_server._util import (
    format_us,
    hash_token,
    new_id,
    new_token,
    now,
    parse_timestamp,
    readable_timestamp,
)
from tally_server.storage.database import Database
from tally_server.storage.repository import (
    BootstrapResult,
    ConflictError,
    ExperimentArchivedError,
    ExperimentClosedError,
    IdempotencyClaim,
    InvalidTransitionError,
    Json,
    Key,
    NotFoundError,
    Page,
    Principal,
)

__all__ = ["SqliteRepository"]

_TERMINAL = frozenset({"completed", "failed", "cancelled"})
_NO_STEP = -1  # how a point without a step is stored: it sorts before step 0
_label_encoder = msgspec.json.Encoder(order="sorted")
_raw = msgspec.Raw
_EMPTY = "{}"

# A point as ingestion inserts it: (experiment, name, step, seq, value, ts, ts_auto, metadata, client_event_id).
# The payload compared for duplicates is (name, step, value, the timestamp's instant or None, metadata).
_PointRow = tuple[int, str, int, int, float, str, bool, str, str]
_INSERT_POINT = (
    "INSERT INTO metric_points(experiment, name, step, seq, value, ts, ts_auto, metadata, client_event_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(experiment, client_event_id) DO NOTHING"
)
# The stored points of some client_event_ids: json_each drives, and every id is one probe of the unique index
# (without INDEXED BY, SQLite plans `client_event_id IN (...)` on the primary key and reads every point of
# the experiment: the cost would grow with the experiment's size).
_STORED_BY_CLIENT_EVENT_ID = (
    "SELECT m.client_event_id, m.seq, m.name, m.step, m.value, m.ts, m.ts_auto, m.metadata "
    "FROM json_each(?) AS j CROSS JOIN metric_points AS m INDEXED BY metric_points_by_client_event_id "
    "ON m.experiment = ? AND m.client_event_id = j.value"
)


def _as_is(value: Any) -> Any:
    return value


def _assignments(
    changes: Json, columns: Mapping[str, Callable[[Any], Any]], stamp: str
) -> tuple[list[str], list[Any]]:
    """The SET clause of a partial update (`PATCH`), and its arguments: `updated_at`, then each of `columns` that
    `changes` holds, its value encoded for storage by the column's function. A key left out of `changes` stays
    as it is; a None given is stored (the caller's encoder decides what None means)."""
    sets, args = ["updated_at = ?"], [stamp]
    for column, encode in columns.items():
        if column in changes:
            sets.append(f"{column} = ?")
            args.append(encode(changes[column]))
    return sets, args


def _free_json(value: Any) -> str:
    """Free-form metadata as stored: compact JSON text in the order sent (stdlib json keeps huge integers)."""
    return json.dumps(
        {} if value is None else value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _meta(text: str) -> msgspec.Raw:
    return _raw(text)


def _json_path(key: str) -> str:
    # Metadata keys match ^[A-Za-z_][A-Za-z0-9_.-]*$ (the contract), so quoting them is enough.
    return '$."' + key + '"'


_IDEMPOTENCY_SELECT = (
    "SELECT fingerprint, state, status, body, headers, created_us FROM idempotency_keys "
    "WHERE org = ? AND key = ?"
)
_FOLDER_SELECT = (
    "SELECT f.pk, f.id, f.name, p.id, f.description, f.metadata, f.created_at, f.updated_at, f.parent, "
    "f.archived_at FROM folders f LEFT JOIN folders p ON p.pk = f.parent "
)
_EXPERIMENT_COLUMNS = (
    "SELECT e.pk, e.id, e.name, f.id, e.description, e.metadata, e.status, e.created_at, e.updated_at, "
    "e.ended_at, e.tags, e.archived_at "
)
_EXPERIMENT_SELECT = _EXPERIMENT_COLUMNS + "FROM experiments e LEFT JOIN folders f ON f.pk = e.folder "
# With the `tag` filter, the walk is one range of experiment_tags' primary key (org, tag, experiment), in
# experiment order: the cost of a page does not grow with the number of experiments (tagged or not).
_EXPERIMENT_SELECT_BY_TAG = (
    _EXPERIMENT_COLUMNS + "FROM experiment_tags t JOIN experiments e ON e.pk = t.experiment "
    "LEFT JOIN folders f ON f.pk = e.folder "
)
_KEY_SELECT = (
    "SELECT k.pk, k.id, e.id, k.name, k.token_hint, k.created_at, k.revoked_at, k.expires_at FROM api_keys k "
)
_KEY_SELECT += "JOIN experiments e ON e.pk = k.experiment "
_ANNOTATION_SELECT = (
    "SELECT a.pk, a.id, e.id, a.text, a.step, a.ts, a.metadata, a.client_event_id, a.created_at, a.ts_auto "
    "FROM annotations a JOIN experiments e ON e.pk = a.experiment "
)


def _folder(row: Sequence[Any]) -> Json:
    return {
        "id": row[1],
        "name": row[2],
        "parent_id": row[3],
        "description": row[4],
        "metadata": _meta(row[5]),
        "created_at": row[6],
        "updated_at": row[7],
        "archived_at": row[9],
    }


def _experiment(row: Sequence[Any]) -> Json:
    return {
        "id": row[1],
        "name": row[2],
        "folder_id": row[3],
        "description": row[4],
        "metadata": _meta(row[5]),
        "status": row[6],
        "created_at": row[7],
        "updated_at": row[8],
        "ended_at": row[9],
        "tags": _raw(row[10]),
        "archived_at": row[11],
    }


def _tags_json(tags: Sequence[str] | None) -> str:
    """Tags as stored in `experiments.tags`: a compact JSON array, in the order sent (the contract's pattern
    keeps them ASCII without quotes or backslashes)."""
    return json.dumps(list(tags or ()), separators=(",", ":"))


def _ingestion_key(row: Sequence[Any]) -> Json:
    return {
        "id": row[1],
        "experiment_id": row[2],
        "name": row[3],
        "token_hint": row[4],
        "created_at": row[5],
        "revoked_at": row[6],
        "expires_at": row[7],
    }


def _annotation(row: Sequence[Any]) -> Json:
    return {
        "id": row[1],
        "experiment_id": row[2],
        "text": row[3],
        "step": row[4],
        "timestamp": readable_timestamp(row[5]),
        "metadata": _meta(row[6]),
        "client_event_id": row[7],
        "created_at": row[8],
    }


def _metric_point_range(experiment_pk: int, filters: Json, after: Key | None) -> tuple[list[str], list[Any]]:
    """The WHERE clause of a metric listing, shaped so that SQLite reads one range of the primary key
    (experiment, name, step, seq) from the cursor on, whatever page the walk is on.

    With a name, the step bounds and the cursor fold into one lower bound on (step, seq): written as separate
    conditions, SQLite picks the step range and re-reads every point before the cursor on every page.
    """
    where: list[str] = ["experiment = ?"]
    args: list[Any] = [experiment_pk]
    min_step, max_step = filters.get("min_step"), filters.get("max_step")
    if max_step is not None:  # an upper bound leaves out points without a step (stored as step -1)
        min_step = max(min_step or 0, 0)
    if filters.get("name") is not None:
        where.append("name = ?")
        args.append(filters["name"])
        lower = (
            None if min_step is None else (min_step, 0)
        )  # seq starts at 1: (min_step, 0) means step >= min_step
        if after is not None and (lower is None or (after[1], after[2]) > lower):
            lower = (after[1], after[2])
        if lower is not None:
            where.append("(step, seq) > (?, ?)")
            args += lower
    else:
        if min_step is not None:
            where.append("step >= ?")
            args.append(min_step)
        if after is not None:
            where.append("(name, step, seq) > (?, ?, ?)")
            args += list(after)
    if max_step is not None:
        where.append("step <= ?")
        args.append(max_step)
    if filters.get("metadata_key") is not None:
        if filters.get("metadata_value") is not None:
            where.append("json_extract(metadata, ?) = ?")
            args += [_json_path(filters["metadata_key"]), filters["metadata_value"]]
        else:
            where.append("json_type(metadata, ?) IS NOT NULL")
            args.append(_json_path(filters["metadata_key"]))
    return where, args


def _page(rows: list[Any], limit: int, item: Any, key: Any) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([item(r) for r in rows], key(rows[-1]) if more and rows else None)


def _extremes(stamps: list[str]) -> tuple[tuple[int, str], tuple[int, str]]:
    """The earliest and latest of some RFC 3339 timestamps, as (microseconds, text)."""
    lengths = set(map(len, stamps))
    if len(lengths) == 1 and all(s[-1] == "Z" and s[10] == "T" for s in stamps):
        # Same layout, UTC, same fraction width: text order is time order.
        low, high = min(stamps), max(stamps)
        return (parse_timestamp(low), low), (parse_timestamp(high), high)
    parsed = [(parse_timestamp(s), s) for s in stamps]
    return min(parsed), max(parsed)


class SqliteRepository:
    """`Repository` on SQLite (see `tally_server.storage.database` for connections and migrations)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, fsync: bool = True) -> None:
        self.db = Database(path, fsync=fsync)
        with self.db.write() as conn:
            # Requests that were running when a previous process stopped will never finish.
            conn.execute("DELETE FROM idempotency_keys WHERE state = 'running'")

    def close(self) -> None:
        self.db.close()

    def check_available(self) -> None:
        self.db.check_file()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction around everything this thread writes inside the block (see `Repository.atomic`)."""
        with self.db.write():
            yield

    # ---- organisations and keys ---------------------------------------------------------------------------
    def bootstrap(self, token: str | None, *, mint_if_existing: bool) -> BootstrapResult:
        _, stamp = now()
        with self.db.write() as conn:
            row = conn.execute("SELECT pk, id FROM organizations ORDER BY pk LIMIT 1").fetchone()
            created = row is None
            if created:
                org_id = new_id("org_")
                org_pk = int(
                    conn.execute(
                        "INSERT INTO organizations(id, name, created_at) VALUES (?, 'default', ?) RETURNING pk",
                        (org_id, stamp),
                    ).fetchone()[0]
                )
            else:
                org_pk, org_id = int(row[0]), str(row[1])
            new: str | None = None
            if token is not None:
                known = conn.execute(
                    "SELECT 1 FROM api_keys WHERE token_hash = ?", (hash_token(token),)
                ).fetchone()
                if known is None:
                    self._insert_org_key(conn, org_pk, token, stamp)
            elif created or mint_if_existing:
                new = new_token("tk_org_")
                self._insert_org_key(conn, org_pk, new, stamp)
        return BootstrapResult(org_id=org_id, created_org=created, new_token=new)

    def create_organization(self, name: str) -> tuple[str, str]:
        """A new organisation with one org API key: (organisation id, token)."""
        _, stamp = now()
        org_id = new_id("org_")
        token = new_token("tk_org_")
        with self.db.write() as conn:
            org_pk = conn.execute(
                "INSERT INTO organizations(id, name, created_at) VALUES (?, ?, ?) RETURNING pk",
                (org_id, name, stamp),
            ).fetchone()[0]
            self._insert_org_key(conn, int(org_pk), token, stamp)
        return org_id, token

    @staticmethod
    def _insert_org_key(conn: sqlite3.Connection, org_pk: int, token: str, stamp: str) -> None:
        conn.execute(
            "INSERT INTO api_keys(id, org, kind, experiment, name, token_hash, token_hint, created_at) "
            "VALUES (?, ?, 'org', NULL, NULL, ?, ?, ?)",
            (new_id("key_"), org_pk, hash_token(token), token[-4:], stamp),
        )

    def authenticate(self, token: str) -> Principal | None:
        row = (
            self.db.reader()
            .execute(
                "SELECT k.id, k.kind, k.revoked_at, o.pk, o.id, o.name, e.pk, e.id, k.expires_us FROM api_keys k "
                "JOIN organizations o ON o.pk = k.org LEFT JOIN experiments e ON e.pk = k.experiment "
                "WHERE k.token_hash = ?",
                (hash_token(token),),
            )
            .fetchone()
        )
        if row is None or row[2] is not None or (row[8] is not None and row[8] <= now()[0]):
            return None
        kind: Literal["org", "ingestion"] = "ingestion" if row[1] == "ingestion" else "org"
        return Principal(
            key_id=row[0], kind=kind, org_pk=row[3], org_id=row[4], org_name=row[5], experiment_pk=row[6],
            experiment_id=row[7],
        )  # fmt: skip

    def experiment_ref(self, org_pk: int, experiment_id: str) -> tuple[int, str]:
        """The experiment's row key and status; NotFoundError outside the organisation."""
        return self._experiment_ref(self.db.reader(), org_pk, experiment_id)

    @staticmethod
    def _experiment_ref(conn: sqlite3.Connection, org_pk: int, experiment_id: str) -> tuple[int, str]:
        row = conn.execute(
            "SELECT pk, status FROM experiments WHERE id = ? AND org = ?", (experiment_id, org_pk)
        ).fetchone()
        if row is None:
            raise NotFoundError("experiment", experiment_id)
        return int(row[0]), str(row[1])

    @staticmethod
    def _folder_pk(conn: sqlite3.Connection, org_pk: int, folder_id: str) -> int:
        row = conn.execute("SELECT pk FROM folders WHERE id = ? AND org = ?", (folder_id, org_pk)).fetchone()
        if row is None:
            raise NotFoundError("folder", folder_id)
        return int(row[0])

    # ---- folders -------------------------------------------------------------------------------------------
    def list_folders(
        self,
        org_pk: int,
        parent_id: str | None,
        limit: int,
        after: Key | None,
        include_archived: bool = False,
    ) -> Page:
        with self.db.read_snapshot() as conn:
            where = "f.org = ? AND f.pk > ? AND " + ("" if include_archived else "f.archived_at IS NULL AND ")
            args: list[Any] = [org_pk, after[0] if after else 0]
            if parent_id is None:
                where += "f.parent IS NULL"
            else:
                where += "f.parent = ?"
                args.append(self._folder_pk(conn, org_pk, parent_id))
            rows = conn.execute(
                _FOLDER_SELECT + f"WHERE {where} ORDER BY f.pk LIMIT ?", (*args, limit + 1)
            ).fetchall()
        return _page(rows, limit, _folder, lambda r: (r[0],))

    def _fetch_folder(self, conn: sqlite3.Connection, org_pk: int, folder_id: str) -> Sequence[Any]:
        row = conn.execute(_FOLDER_SELECT + "WHERE f.id = ? AND f.org = ?", (folder_id, org_pk)).fetchone()
        if row is None:
            raise NotFoundError("folder", folder_id)
        return tuple(row)

    @staticmethod
    def _check_name_free(
        conn: sqlite3.Connection, org_pk: int, parent_pk: int | None, name: str, except_pk: int | None = None
    ) -> None:
        row = conn.execute(
            "SELECT id FROM folders WHERE org = ? AND coalesce(parent, 0) = ? AND name = ? AND pk != ?",
            (org_pk, parent_pk or 0, name, except_pk or 0),
        ).fetchone()
        if row is not None:
            raise ConflictError(
                f"A folder named {name!r} already exists in this parent.",
                {"name": name, "existing_id": row[0]},
            )

    def create_folder(
        self, org_pk: int, name: str, parent_id: str | None, description: str | None, metadata: Any
    ) -> Json:
        _, stamp = now()
        folder_id = new_id("fld_")
        with self.db.write() as conn:
            parent_pk = self._folder_pk(conn, org_pk, parent_id) if parent_id is not None else None
            self._check_name_free(conn, org_pk, parent_pk, name)
            conn.execute(
                "INSERT INTO folders(id, org, parent, name, description, metadata, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (folder_id, org_pk, parent_pk, name, description, _free_json(metadata), stamp, stamp),
            )
            return _folder(self._fetch_folder(conn, org_pk, folder_id))

    def get_folder(self, org_pk: int, folder_id: str) -> Json:
        return _folder(self._fetch_folder(self.db.reader(), org_pk, folder_id))

    def patch_folder(self, org_pk: int, folder_id: str, changes: Json) -> Json:
        _, stamp = now()
        with self.db.write() as conn:
            row = self._fetch_folder(conn, org_pk, folder_id)
            sets, args = _assignments(changes, {"description": _as_is, "metadata": _free_json}, stamp)
            conn.execute(f"UPDATE folders SET {', '.join(sets)} WHERE pk = ?", (*args, row[0]))
            return _folder(self._fetch_folder(conn, org_pk, folder_id))

    def rename_folder(self, org_pk: int, folder_id: str, name: str) -> Json:
        _, stamp = now()
        with self.db.write() as conn:
            row = self._fetch_folder(conn, org_pk, folder_id)
            if row[2] != name:
                self._check_name_free(conn, org_pk, row[8], name, except_pk=row[0])
                conn.execute(
                    "UPDATE folders SET name = ?, updated_at = ? WHERE pk = ?", (name, stamp, row[0])
                )
            return _folder(self._fetch_folder(conn, org_pk, folder_id))

    def move_folder(self, org_pk: int, folder_id: str, parent_id: str | None) -> Json:
        _, stamp = now()
        with self.db.write() as conn:
            row = self._fetch_folder(conn, org_pk, folder_id)
            folder_pk = int(row[0])
            parent_pk = self._folder_pk(conn, org_pk, parent_id) if parent_id is not None else None
            if parent_pk is not None:
                ancestors = {
                    r[0]
                    for r in conn.execute(
                        "WITH RECURSIVE up(pk) AS (SELECT ? UNION SELECT f.parent FROM folders f JOIN up "
                        "ON f.pk = up.pk WHERE f.parent IS NOT NULL) SELECT pk FROM up",
                        (parent_pk,),
                    )
                }
                if folder_pk in ancestors:
                    raise ConflictError(
                        f"Folder {folder_id} cannot move under itself or one of its descendants.",
                        {"folder_id": folder_id, "parent_id": parent_id},
                    )
            if row[8] != parent_pk:
                self._check_name_free(conn, org_pk, parent_pk, row[2], except_pk=folder_pk)
                conn.execute(
                    "UPDATE folders SET parent = ?, updated_at = ? WHERE pk = ?",
                    (parent_pk, stamp, folder_pk),
                )
            return _folder(self._fetch_folder(conn, org_pk, folder_id))

    def set_folder_archived(self, org_pk: int, folder_id: str, archived: bool) -> Json:
        """Only the folder itself: what it holds keeps its own state (see the contract's archiveFolder). The
        condition on `archived_at` makes a repeat a no-op in the database itself, whoever runs it at once."""
        _, stamp = now()
        with self.db.write() as conn:
            row = self._fetch_folder(conn, org_pk, folder_id)
            if archived:
                conn.execute(
                    "UPDATE folders SET archived_at = ?, updated_at = ? WHERE pk = ? AND archived_at IS NULL",
                    (stamp, stamp, row[0]),
                )
            else:
                conn.execute(
                    "UPDATE folders SET archived_at = NULL, updated_at = ? WHERE pk = ? AND archived_at IS NOT NULL",
                    (stamp, row[0]),
                )
            return _folder(self._fetch_folder(conn, org_pk, folder_id))

    def _subtree(self, conn: sqlite3.Connection, org_pk: int, folder_pk: int) -> list[int]:
        # `f.org = ?` lets each step use folders_by_parent; without it SQLite builds an automatic index
        # over every folder on every call.
        return [
            r[0]
            for r in conn.execute(
                "WITH RECURSIVE down(pk) AS (SELECT ? UNION SELECT f.pk FROM folders f JOIN down "
                "ON f.org = ? AND f.parent = down.pk) SELECT pk FROM down",
                (folder_pk, org_pk),
            )
        ]

    # ---- experiments ---------------------------------------------------------------------------------------
    def list_experiments(self, org_pk: int, filters: Json, limit: int, after: Key | None) -> Page:
        with self.db.read_snapshot() as conn:
            select, order = _EXPERIMENT_SELECT, "e.pk"
            where, args = ["e.org = ?", "e.pk > ?"], [org_pk, after[0] if after else 0]
            if filters.get("tag") is not None:
                select, order = _EXPERIMENT_SELECT_BY_TAG, "t.experiment"
                where = ["t.org = ?", "t.tag = ?", "t.experiment > ?", "e.org = ?"]
                args = [org_pk, filters["tag"], after[0] if after else 0, org_pk]
            if not filters.get("include_archived"):
                where.append("e.archived_at IS NULL")
            if filters.get("folder_id") is not None:
                # The contract gives listExperiments no 404: a folder that does not exist holds no
                # experiments.
                folder = conn.execute(
                    "SELECT pk FROM folders WHERE id = ? AND org = ?", (filters["folder_id"], org_pk)
                ).fetchone()
                if folder is None:
                    return Page([], None)
                where.append("e.folder = ?")
                args.append(folder[0])
            if filters.get("status") is not None:
                where.append("e.status = ?")
                args.append(filters["status"])
            if filters.get("name_prefix") is not None:
                where.append("substr(e.name, 1, length(?)) = ?")
                args += [filters["name_prefix"], filters["name_prefix"]]
            if filters.get("created_after") is not None:
                where.append("e.created_us > ?")
                args.append(parse_timestamp(filters["created_after"]))
            if filters.get("created_before") is not None:
                where.append("e.created_us < ?")
                args.append(parse_timestamp(filters["created_before"]))
            rows = conn.execute(
                select + f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?", (*args, limit + 1)
            ).fetchall()
        return _page(rows, limit, _experiment, lambda r: (r[0],))

    def _fetch_experiment(self, conn: sqlite3.Connection, org_pk: int, experiment_id: str) -> Sequence[Any]:
        row = conn.execute(
            _EXPERIMENT_SELECT + "WHERE e.id = ? AND e.org = ?", (experiment_id, org_pk)
        ).fetchone()
        if row is None:
            raise NotFoundError("experiment", experiment_id)
        return tuple(row)

    def create_experiment(
        self,
        org_pk: int,
        name: str,
        folder_id: str | None,
        description: str | None,
        metadata: Any,
        tags: Sequence[str] = (),
    ) -> Json:
        us, stamp = now()
        experiment_id = new_id("exp_")
        with self.db.write() as conn:
            folder_pk = self._folder_pk(conn, org_pk, folder_id) if folder_id is not None else None
            experiment_pk = conn.execute(
                "INSERT INTO experiments(id, org, folder, name, description, metadata, status, created_us, "
                "created_at, updated_at, ended_at, tags) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, NULL, ?) "
                "RETURNING pk",
                (experiment_id, org_pk, folder_pk, name, description, _free_json(metadata), us, stamp, stamp,
                 _tags_json(tags)),
            ).fetchone()[0]  # fmt: skip
            self._add_tags(conn, org_pk, int(experiment_pk), tags)
            return _experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    @staticmethod
    def _add_tags(conn: Any, org_pk: int, experiment_pk: int, tags: Sequence[str] | None) -> None:
        if tags:
            conn.executemany(
                "INSERT INTO experiment_tags(org, tag, experiment) VALUES (?, ?, ?)",
                [(org_pk, tag, experiment_pk) for tag in tags],
            )

    def update_experiment(self, org_pk: int, experiment_id: str, changes: Json) -> Json:
        """Absent keys stay as they are; None clears (metadata to {}, tags to none). The tag index is rewritten in
        the same transaction: only the tags that went away are deleted, only the new ones inserted."""
        _, stamp = now()
        with self.db.write() as conn:
            row = self._fetch_experiment(conn, org_pk, experiment_id)
            columns = {"name": _as_is, "description": _as_is, "metadata": _free_json}
            sets, args = _assignments(changes, columns, stamp)
            if "tags" in changes:
                new_tags = list(changes["tags"] or ())
                old_tags = json.loads(row[10])
                sets.append("tags = ?")
                args.append(_tags_json(new_tags))
                gone = [(org_pk, tag, row[0]) for tag in old_tags if tag not in new_tags]
                if gone:
                    conn.executemany(
                        "DELETE FROM experiment_tags WHERE org = ? AND tag = ? AND experiment = ?", gone
                    )
                self._add_tags(conn, org_pk, int(row[0]), [tag for tag in new_tags if tag not in old_tags])
            conn.execute(f"UPDATE experiments SET {', '.join(sets)} WHERE pk = ?", (*args, row[0]))
            return _experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    def set_experiment_archived(self, org_pk: int, experiment_id: str, archived: bool) -> Json:
        """Status, data and keys are kept; ingestion and annotation creation check `archived_at` in the
        transaction that would store them. A repeat is a no-op (the UPDATE's condition)."""
        _, stamp = now()
        with self.db.write() as conn:
            row = self._fetch_experiment(conn, org_pk, experiment_id)
            if archived:
                conn.execute(
                    "UPDATE experiments SET archived_at = ?, updated_at = ? WHERE pk = ? AND archived_at IS NULL",
                    (stamp, stamp, row[0]),
                )
            else:
                conn.execute(
                    "UPDATE experiments SET archived_at = NULL, updated_at = ? WHERE pk = ? "
                    "AND archived_at IS NOT NULL",
                    (stamp, row[0]),
                )
            return _experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    def get_experiment(self, org_pk: int, experiment_id: str) -> Json:
        return _experiment(self._fetch_experiment(self.db.reader(), org_pk, experiment_id))

    def update_experiment_status(self, org_pk: int, experiment_id: str, status: str) -> Json:
        _, stamp = now()
        with self.db.write() as conn:
            row = self._fetch_experiment(conn, org_pk, experiment_id)
            current = row[6]
            if current in _TERMINAL:
                raise InvalidTransitionError(experiment_id, current, status)
            if status != current:
                conn.execute(
                    "UPDATE experiments SET status = ?, updated_at = ?, ended_at = ? WHERE pk = ?",
                    (status, stamp, stamp if status in _TERMINAL else None, row[0]),
                )
            return _experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    def move_experiment(self, org_pk: int, experiment_id: str, folder_id: str | None) -> Json:
        _, stamp = now()
        with self.db.write() as conn:
            row = self._fetch_experiment(conn, org_pk, experiment_id)
            folder_pk = self._folder_pk(conn, org_pk, folder_id) if folder_id is not None else None
            if row[3] != folder_id:
                conn.execute(
                    "UPDATE experiments SET folder = ?, updated_at = ? WHERE pk = ?",
                    (folder_pk, stamp, row[0]),
                )
            return _experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    # ---- metrics -------------------------------------------------------------------------------------------
    def ingest_metrics(self, experiment_pk: int, experiment_id: str, events: Sequence[Json]) -> Json:
        """Store a validated batch in one transaction, committed before this returns (so `sync=true` holds:
        every accepted point is readable through `list_metrics` as soon as the answer is sent).

        This is the hot path (`make bench` compares it with bare SQLite inserting the same rows): one pass over
        the events builds the insert's parameters, and the unique index on (experiment, client_event_id) finds
        the repeats while inserting, so a batch of new events costs one index probe each and nothing more.
        """
        _, received = now()
        encode = _label_encoder.encode
        labels_text: dict[tuple[tuple[str, str], ...], str] = {}  # a training loop repeats a few label sets
        with self.db.write() as conn:
            status = conn.execute(
                "SELECT status, archived_at FROM experiments WHERE pk = ?", (experiment_pk,)
            ).fetchone()
            if status is None:
                raise NotFoundError("experiment", experiment_id)
            if status[0] in _TERMINAL:
                raise ExperimentClosedError(experiment_id, status[0])
            if status[1] is not None:
                raise ExperimentArchivedError(experiment_id)
            rows: list[_PointRow] = []
            append = rows.append
            for seq, event in zip(self._reserve_seqs(conn, len(events)), events, strict=True):
                step = event.get("step")
                ts = event.get("timestamp")
                metadata = event.get("metadata")
                if metadata:
                    key = tuple(metadata.items())
                    text = labels_text.get(key)
                    if text is None:
                        text = labels_text[key] = encode(metadata).decode()
                else:
                    text = _EMPTY
                append(
                    (
                        experiment_pk,
                        event["name"],
                        _NO_STEP if step is None else int(step),  # a JSON 3.0 is an integer too
                        seq,
                        float(event["value"]),
                        received if ts is None else ts,
                        ts is None,
                        text,
                        event["client_event_id"],
                    )
                )
            conflicts: list[Json] = []
            if self._insert_points(conn, rows) == len(rows):
                accepted, duplicates = rows, 0
            else:
                accepted, duplicates, conflicts = self._sort_out_repeats(conn, experiment_pk, rows)
            if accepted:
                self._update_stats(conn, experiment_pk, accepted)
        return {"accepted": len(accepted), "duplicates": duplicates, "conflicts": conflicts}

    @staticmethod
    def _reserve_seqs(conn: Any, count: int) -> Sequence[int]:
        """`count` new values of the ingestion sequence, increasing: one counter row here, where writers are
        serialised anyway (PostgreSQL uses a SEQUENCE, so that concurrent writers do not queue on one row)."""
        last = int(
            conn.execute(
                "UPDATE counters SET value = value + ? WHERE name = 'metric_seq' RETURNING value", (count,)
            ).fetchone()[0]
        )
        return range(last - count + 1, last + 1)

    @staticmethod
    def _insert_points(conn: Any, rows: list[_PointRow]) -> int:
        """Insert the points, skipping those whose client_event_id is stored; how many were inserted."""
        before = conn.total_changes
        conn.executemany(_INSERT_POINT, rows)
        return int(conn.total_changes - before)

    @staticmethod
    def _sort_out_repeats(
        conn: sqlite3.Connection, experiment_pk: int, rows: list[_PointRow]
    ) -> tuple[list[_PointRow], int, list[Json]]:
        """After an insert that skipped some rows: which rows were stored (the stored point has the `seq` this
        batch gave the row), which repeat a stored point exactly (duplicates) and which reuse its
        `client_event_id` with another payload (conflicts). The lookup probes the unique index once per id."""
        ids = msgspec.json.encode([row[8] for row in rows])
        # stored[client_event_id] = (seq, (name, step, value, the timestamp's instant or None, metadata)): the same
        # instant written another way (`.355Z`, `.355000+00:00`) is the same payload
        stored: dict[str, tuple[int, tuple[Any, ...]]] = {
            r[0]: (r[1], (r[2], r[3], r[4], None if r[6] else parse_timestamp(r[5]), r[7]))
            for r in conn.execute(_STORED_BY_CLIENT_EVENT_ID, (ids, experiment_pk))
        }
        accepted: list[_PointRow] = []
        duplicates = 0
        conflicts: list[Json] = []
        for index, row in enumerate(rows):
            seq, payload = stored[row[8]]
            if seq == row[3]:
                accepted.append(row)
            elif payload == (row[1], row[2], row[4], None if row[6] else parse_timestamp(row[5]), row[7]):
                duplicates += 1
            else:
                conflicts.append(
                    {
                        "index": index,
                        "client_event_id": row[8],
                        "message": "client_event_id was already used with another payload",
                    }
                )
        return accepted, duplicates, conflicts

    @staticmethod
    def _update_stats(conn: sqlite3.Connection, experiment_pk: int, rows: list[_PointRow]) -> None:
        stamps: dict[str, list[str]] = {}
        for row in rows:
            stamps.setdefault(row[1], []).append(row[5])
        series = []
        for name, values in stamps.items():
            (first_us, first_ts), (last_us, last_ts) = _extremes(values)
            series.append((experiment_pk, name, len(values), first_us, first_ts, last_us, last_ts))
        series.sort()  # every writer touches the rows in the same order: no deadlock between two batches
        conn.executemany(
            "INSERT INTO metric_series(experiment, name, count, first_us, first_ts, last_us, last_ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(experiment, name) DO UPDATE SET "
            "count = count + excluded.count, "
            "first_ts = CASE WHEN excluded.first_us < first_us THEN excluded.first_ts ELSE first_ts END, "
            "first_us = min(first_us, excluded.first_us), "
            "last_ts = CASE WHEN excluded.last_us > last_us THEN excluded.last_ts ELSE last_ts END, "
            "last_us = max(last_us, excluded.last_us)",
            series,
        )
        labels: Counter[tuple[str, str, str]] = Counter()
        for (name, metadata), count in Counter((r[1], r[7]) for r in rows if r[7] != _EMPTY).items():
            for key, value in msgspec.json.decode(metadata).items():
                labels[(name, key, value)] += count
        if labels:
            conn.executemany(
                "INSERT INTO metric_label_values(experiment, name, key, value, count) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(experiment, name, key, value) DO UPDATE SET count = count + excluded.count",
                [(experiment_pk, n, k, v, c) for (n, k, v), c in sorted(labels.items())],
            )

    def list_metrics(
        self, org_pk: int, experiment_id: str, filters: Json, limit: int, after: Key | None
    ) -> Page:
        conn = self.db.reader()
        experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
        where, args = _metric_point_range(experiment_pk, filters, after)
        rows = conn.execute(
            "SELECT name, value, step, ts, metadata, client_event_id, seq FROM metric_points "
            f"WHERE {' AND '.join(where)} ORDER BY name, step, seq LIMIT ?",
            (*args, limit + 1),
        ).fetchall()
        more = len(rows) > limit
        if more:
            del rows[limit:]
        items = [
            {
                "name": r[0],
                "value": r[1],
                "step": None if r[2] < 0 else r[2],
                "timestamp": readable_timestamp(r[3]),
                "metadata": _raw(r[4]),
                "client_event_id": r[5],
            }
            for r in rows
        ]
        last = rows[-1] if rows else None
        return Page(items, (last[0], last[2], last[6]) if more and last else None)

    def compare_metrics(
        self, org_pk: int, series: Sequence[Json], min_step: int | None, max_step: int | None, limit: int
    ) -> Json:
        low = 0 if min_step is None else min_step
        high = (1 << 63) - 1 if max_step is None else max_step
        described: list[Json] = []
        columns: list[dict[int, float]] = []
        with self.db.read_snapshot() as conn:
            for selector in series:
                experiment_pk, _ = self._experiment_ref(conn, org_pk, selector["experiment_id"])
                labels: dict[str, str] = selector.get("metadata") or {}
                where = "experiment = ? AND name = ? AND step >= ? AND step <= ?"
                args: list[Any] = [experiment_pk, selector["name"], low, high]
                for key, value in sorted(labels.items()):
                    where += " AND json_extract(metadata, ?) = ?"
                    args += [_json_path(key), value]
                values: dict[int, float] = {}
                cursor = conn.execute(
                    f"SELECT step, value FROM metric_points WHERE {where} ORDER BY step, seq", args
                )
                for step, value in cursor:
                    if step not in values and len(values) > limit:
                        break  # the first limit+1 steps of every series are enough to build the rows
                    values[step] = value  # ordered by ingestion within a step: the latest wins
                cursor.close()
                if len(values) > limit:
                    count = conn.execute(
                        f"SELECT count(DISTINCT step) FROM metric_points WHERE {where}", args
                    )
                    points = int(count.fetchone()[0])
                else:
                    points = len(values)
                columns.append(values)
                described.append(
                    {
                        "experiment_id": selector["experiment_id"],
                        "name": selector["name"],
                        "metadata": labels,
                        "points": points,
                    }
                )
        steps = sorted(set().union(*columns))
        truncated = len(steps) > limit
        rows = [{"step": step, "values": [column.get(step) for column in columns]} for step in steps[:limit]]
        return {"series": described, "rows": rows, "truncated": truncated}

    def _experiment_scope(
        self, conn: sqlite3.Connection, org_pk: int, experiment_id: str | None, folder_id: str | None
    ) -> tuple[str, list[Any]]:
        """An SQL condition on `experiment` for the catalog's filters (404 for ids outside the
        organisation)."""
        clauses: list[str] = []
        args: list[Any] = []
        if experiment_id is not None:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            clauses.append("experiment = ?")
            args.append(experiment_pk)
        if folder_id is not None:
            folders = self._subtree(conn, org_pk, self._folder_pk(conn, org_pk, folder_id))
            clauses.append(
                "experiment IN (SELECT pk FROM experiments WHERE folder IN (SELECT value FROM json_each(?)))"
            )
            args.append(json.dumps(folders))
        if not clauses:
            clauses.append("experiment IN (SELECT pk FROM experiments WHERE org = ?)")
            args.append(org_pk)
        return " AND ".join(clauses), args

    def list_metric_catalog(
        self,
        org_pk: int,
        experiment_id: str | None,
        folder_id: str | None,
        name_prefix: str | None,
        limit: int,
        after: Key | None,
    ) -> Page:
        with self.db.read_snapshot() as conn:
            scope, args = self._experiment_scope(conn, org_pk, experiment_id, folder_id)
            where = scope
            if name_prefix is not None:
                where += " AND substr(name, 1, length(?)) = ?"
                args += [name_prefix, name_prefix]
            if after is not None:
                where += " AND name > ?"
                args.append(after[0])
            names = [
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT name FROM metric_series WHERE {where} ORDER BY name LIMIT ?",
                    (*args, limit + 1),
                )
            ]
            more = len(names) > limit
            names = names[:limit]
            if not names:
                return Page([], None)
            scope_args = args[
                : len(args) - (2 if name_prefix is not None else 0) - (1 if after is not None else 0)
            ]
            wanted = json.dumps(names)
            entries: dict[str, Json] = {}
            for name, count, first_us, first_ts, last_us, last_ts in conn.execute(
                "SELECT name, count, first_us, first_ts, last_us, last_ts FROM metric_series "
                f"WHERE {scope} AND name IN (SELECT value FROM json_each(?))",
                (*scope_args, wanted),
            ):
                entry = entries.get(name)
                if entry is None:
                    entries[name] = {
                        "name": name, "count": count, "experiment_count": 1, "first": (first_us, first_ts),
                        "last": (last_us, last_ts),
                    }  # fmt: skip
                else:
                    entry["count"] += count
                    entry["experiment_count"] += 1
                    entry["first"] = min(entry["first"], (first_us, first_ts))
                    entry["last"] = max(entry["last"], (last_us, last_ts))
            keys: dict[str, list[str]] = {}
            for name, key in conn.execute(
                f"SELECT DISTINCT name, key FROM metric_label_values WHERE {scope} "
                "AND name IN (SELECT value FROM json_each(?)) ORDER BY name, key",
                (*scope_args, wanted),
            ):
                keys.setdefault(name, []).append(key)
        items = [
            {
                "name": name,
                "count": entries[name]["count"],
                "experiment_count": entries[name]["experiment_count"],
                "first_seen": readable_timestamp(entries[name]["first"][1]),
                "last_seen": readable_timestamp(entries[name]["last"][1]),
                "metadata_keys": keys.get(name, []),
            }
            for name in names
        ]
        return Page(items, (names[-1],) if more else None)

    def inspect_metric_values(
        self,
        org_pk: int,
        metric_name: str,
        metadata_key: str,
        experiment_id: str | None,
        folder_id: str | None,
        limit: int,
        after: Key | None,
    ) -> Page:
        with self.db.read_snapshot() as conn:
            scope, args = self._experiment_scope(conn, org_pk, experiment_id, folder_id)
            where = f"{scope} AND name = ? AND key = ?"
            args += [metric_name, metadata_key]
            if after is not None:
                where += " AND value > ?"
                args.append(after[0])
            rows = conn.execute(
                f"SELECT value, sum(count) FROM metric_label_values WHERE {where} "
                "GROUP BY value ORDER BY value LIMIT ?",
                (*args, limit + 1),
            ).fetchall()
        return _page(rows, limit, lambda r: {"value": r[0], "count": int(r[1])}, lambda r: (r[0],))

    # ---- ingestion keys ------------------------------------------------------------------------------------
    def list_ingestion_keys(self, org_pk: int, experiment_id: str, limit: int, after: Key | None) -> Page:
        conn = self.db.reader()
        experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
        rows = conn.execute(
            _KEY_SELECT
            + "WHERE k.experiment = ? AND k.kind = 'ingestion' AND k.pk > ? ORDER BY k.pk LIMIT ?",
            (experiment_pk, after[0] if after else 0, limit + 1),
        ).fetchall()
        return _page(rows, limit, _ingestion_key, lambda r: (r[0],))

    def create_ingestion_key(
        self, org_pk: int, experiment_id: str, name: str | None, expires_in_seconds: int | None = None
    ) -> Json:
        us, stamp = now()
        token = new_token("tk_ing_")
        key_id = new_id("ik_")
        expires_us = None if expires_in_seconds is None else us + expires_in_seconds * 1_000_000
        with self.db.write() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            conn.execute(
                "INSERT INTO api_keys(id, org, kind, experiment, name, token_hash, token_hint, created_at, "
                "expires_us, expires_at) VALUES (?, ?, 'ingestion', ?, ?, ?, ?, ?, ?, ?)",
                (key_id, org_pk, experiment_pk, name, hash_token(token), token[-4:], stamp, expires_us,
                 None if expires_us is None else format_us(expires_us)),
            )  # fmt: skip
            row = conn.execute(_KEY_SELECT + "WHERE k.id = ?", (key_id,)).fetchone()
        return {**_ingestion_key(row), "token": token}

    def reissue_ingestion_token(self, org_pk: int, key_id: str) -> Json:
        """A new token for an ingestion key that is neither revoked nor expired (the old one stops working):
        how an idempotent replay of its creation answers, since the server never keeps a token."""
        us, _ = now()
        token = new_token("tk_ing_")
        with self.db.write() as conn:
            changed = conn.execute(
                "UPDATE api_keys SET token_hash = ?, token_hint = ? WHERE id = ? AND org = ? AND kind = 'ingestion' "
                "AND revoked_at IS NULL AND (expires_us IS NULL OR expires_us > ?)",
                (hash_token(token), token[-4:], key_id, org_pk, us),
            ).rowcount
            if not changed:
                raise ConflictError(
                    f"Ingestion key {key_id} was revoked or has expired since it was created; create a new one.",
                    {"key_id": key_id},
                )
            row = conn.execute(_KEY_SELECT + "WHERE k.id = ?", (key_id,)).fetchone()
        return {**_ingestion_key(row), "token": token}

    def revoke_ingestion_key(self, org_pk: int, key_id: str) -> Json:
        _, stamp = now()
        with self.db.write() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND org = ? AND kind = 'ingestion' "
                "AND revoked_at IS NULL",
                (stamp, key_id, org_pk),
            )
            row = conn.execute(
                _KEY_SELECT + "WHERE k.id = ? AND k.org = ? AND k.kind = 'ingestion'", (key_id, org_pk)
            ).fetchone()
        if row is None:
            raise NotFoundError("ingestion key", key_id)
        return _ingestion_key(row)

    # ---- annotations ---------------------------------------------------------------------------------------
    def list_annotations(self, org_pk: int, experiment_id: str, limit: int, after: Key | None) -> Page:
        conn = self.db.reader()
        experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
        rows = conn.execute(
            _ANNOTATION_SELECT + "WHERE a.experiment = ? AND a.pk > ? ORDER BY a.pk LIMIT ?",
            (experiment_pk, after[0] if after else 0, limit + 1),
        ).fetchall()
        return _page(rows, limit, _annotation, lambda r: (r[0],))

    def create_annotation(self, experiment_pk: int, experiment_id: str, payload: Json) -> tuple[bool, Json]:
        """Create an annotation; an existing one with the same `client_event_id` and payload is answered as is
        (`created` False); with another payload, ConflictError."""
        _, stamp = now()
        step = payload.get("step")
        step = None if step is None else int(step)
        ts = payload.get("timestamp")
        metadata = payload.get("metadata") or {}
        client_event_id = payload["client_event_id"]
        with self.db.write() as conn:
            archived = conn.execute(
                "SELECT archived_at FROM experiments WHERE pk = ?", (experiment_pk,)
            ).fetchone()
            if archived is not None and archived[0] is not None:
                raise ExperimentArchivedError(experiment_id)
            row = conn.execute(
                _ANNOTATION_SELECT + "WHERE a.experiment = ? AND a.client_event_id = ?",
                (experiment_pk, client_event_id),
            ).fetchone()
            if row is not None:
                stored = (row[3], row[4], None if row[9] else parse_timestamp(row[5]), json.loads(row[6]))
                if stored != (payload["text"], step, None if ts is None else parse_timestamp(ts), metadata):
                    raise ConflictError(
                        "client_event_id was already used with another payload.",
                        {"client_event_id": client_event_id, "annotation_id": row[1]},
                    )
                return False, _annotation(row)
            annotation_id = new_id("ann_")
            conn.execute(
                "INSERT INTO annotations(id, experiment, text, step, ts, ts_auto, metadata, client_event_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (annotation_id, experiment_pk, payload["text"], step, stamp if ts is None else ts, ts is None,
                 _free_json(metadata), client_event_id, stamp),
            )  # fmt: skip
            row = conn.execute(_ANNOTATION_SELECT + "WHERE a.id = ?", (annotation_id,)).fetchone()
        return True, _annotation(row)

    def delete_annotation(self, org_pk: int, experiment_id: str, annotation_id: str) -> None:
        """The row goes, and with it the claim on its client_event_id (the unique constraint is on live rows):
        a later annotation with that id is a new one."""
        with self.db.write() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            deleted = conn.execute(
                "DELETE FROM annotations WHERE id = ? AND experiment = ?", (annotation_id, experiment_pk)
            ).rowcount
        if not deleted:
            raise NotFoundError("annotation", annotation_id)

    # ---- idempotency ---------------------------------------------------------------------------------------
    def idempotency_claim(
        self,
        org_pk: int,
        key: str,
        fingerprint: str,
        now_us: int,
        expire_before_us: int,
        stale_before_us: int,
    ) -> IdempotencyClaim:
        # A replay, a mismatch or a request still running is known from committed data: answer it without
        # waiting for the write lock, which the running request holds until its effect and answer commit.
        row = self.db.reader().execute(_IDEMPOTENCY_SELECT, (org_pk, key)).fetchone()
        if row is not None and row[5] >= expire_before_us:
            if row[0] != fingerprint:
                return IdempotencyClaim("mismatch")
            if row[1] == "done":
                return IdempotencyClaim("done", int(row[2]), bytes(row[3]), json.loads(row[4] or "{}"))
            if row[5] >= stale_before_us:
                return IdempotencyClaim("running")
        with self.db.write() as conn:
            row = conn.execute(_IDEMPOTENCY_SELECT, (org_pk, key)).fetchone()
            if row is not None and row[5] < expire_before_us:
                conn.execute("DELETE FROM idempotency_keys WHERE org = ? AND key = ?", (org_pk, key))
                row = None
            if row is None:
                conn.execute(
                    "INSERT INTO idempotency_keys(org, key, fingerprint, state, created_us) "
                    "VALUES (?, ?, ?, 'running', ?)",
                    (org_pk, key, fingerprint, now_us),
                )
                return IdempotencyClaim("claimed")
            if row[0] != fingerprint:
                return IdempotencyClaim("mismatch")
            if row[1] == "running":
                if row[5] < stale_before_us:  # its process died long ago: run it again
                    conn.execute(
                        "UPDATE idempotency_keys SET created_us = ? WHERE org = ? AND key = ?",
                        (now_us, org_pk, key),
                    )
                    return IdempotencyClaim("claimed")
                return IdempotencyClaim("running")
            return IdempotencyClaim("done", int(row[2]), bytes(row[3]), json.loads(row[4] or "{}"))

    def idempotency_complete(
        self, org_pk: int, key: str, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET state = 'done', status = ?, body = ?, headers = ? "
                "WHERE org = ? AND key = ?",
                (status, body, json.dumps(headers), org_pk, key),
            )

    def idempotency_release(self, org_pk: int, key: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                "DELETE FROM idempotency_keys WHERE org = ? AND key = ? AND state = 'running'", (org_pk, key)
            )

    def idempotency_purge(self, expire_before_us: int) -> int:
        with self.db.write() as conn:
            return conn.execute(
                "DELETE FROM idempotency_keys WHERE created_us < ?", (expire_before_us,)
            ).rowcount
