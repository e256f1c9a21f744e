"""The repository's artifact rows (`SqlRepository` inherits them), and the rule that ties them to the contents on
the filesystem (`tally_server.contents`): every artifact row's content exists.

The content of a sha256 is published (renamed into place) and removed only inside a write transaction that holds
that content's lock (`dialects.lock_content`: PostgreSQL's transaction-level advisory lock on the sha256, so every
server process on one database takes turns; SQLite needs none, its write transactions are serialised across
processes by `BEGIN IMMEDIATE`). An upload takes the lock, inserts its row, publishes the content and commits; a
delete removes its row, takes the lock, and removes the content only when no row uses it any more. So a delete
that comes first removes the file and the upload puts it back; one that comes second sees the upload's row (it
waited for its commit) and keeps it. A delete whose commit fails after it removed the content would leave its
row without one (downloads then answer 404 naming the missing content); an upload whose commit fails leaves a
content no row uses, which the next upload of it reuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, select

from tally_server._util import new_id, now
from tally_server.contents import ContentStore, Staged
from tally_server.storage import dialects
from tally_server.storage.repository import Json, Key, NotFoundError, Page
from tally_server.storage.rows import page
from tally_server.storage.schema import artifacts, experiments

__all__ = ["ArtifactRows", "artifact"]

_r = artifacts
_e = experiments
_b = bindparam
_ARTIFACT = select(
    _r.c.pk, _r.c.id, _e.c.id, _r.c.name, _r.c.size_bytes, _r.c.sha256, _r.c.created_at
).select_from(_r.join(_e, _e.c.pk == _r.c.experiment))
_EXPERIMENT_PK = select(_e.c.pk).where(_e.c.id == _b("experiment_id"), _e.c.org == _b("org_pk"))
# FOR KEY SHARE (PostgreSQL): deleteExperiment's FOR UPDATE waits for an upload in flight, and one that comes after
# it finds no experiment.
_EXPERIMENT_PK_HELD = _EXPERIMENT_PK.with_for_update(read=True, key_share=True)
_IN_USE = select(exists().where(_r.c.sha256 == _b("sha256")))


def artifact(row: Sequence[Any]) -> Json:
    return {
        "id": row[1],
        "experiment_id": row[2],
        "name": row[3],
        "size_bytes": row[4],
        "sha256": row[5],
        "created_at": row[6],
    }


def _experiment_pk(conn: Connection, org_pk: int, experiment_id: str, *, held: bool = False) -> int:
    query = _EXPERIMENT_PK_HELD if held else _EXPERIMENT_PK
    found = conn.execute(query, {"experiment_id": experiment_id, "org_pk": org_pk}).scalar()
    if found is None:
        raise NotFoundError("experiment", experiment_id)
    return int(found)


class ArtifactRows:
    """Artifacts: their rows, and their contents' lifetime (see the module's docstring)."""

    db: Any
    contents: ContentStore | None = None

    def _content_store(self) -> ContentStore:
        if self.contents is None:
            raise RuntimeError("this repository has no artifact directory (ContentStore) attached")
        return self.contents

    def create_artifact(self, org_pk: int, experiment_id: str, name: str, staged: Staged) -> Json:
        """Record an upload whose body has arrived whole (its sha256 checked by the caller) and publish its
        content, in one transaction."""
        store = self._content_store()
        _, stamp = now()
        sha256 = staged.sha256
        artifact_id = new_id("art_")
        with self.db.write() as conn:
            experiment_pk = _experiment_pk(conn, org_pk, experiment_id, held=True)
            dialects.lock_content(conn, sha256)
            conn.execute(
                _r.insert().values(
                    id=artifact_id, experiment=experiment_pk, name=name, size_bytes=staged.size, sha256=sha256,
                    created_at=stamp,
                )
            )  # fmt: skip
            store.publish(staged, sha256)
            row = conn.execute(_ARTIFACT.where(_r.c.id == artifact_id)).one()
        return artifact(row)

    def list_artifacts(self, org_pk: int, experiment_id: str, limit: int, after: Key | None) -> Page:
        with self.db.read() as conn:
            experiment_pk = _experiment_pk(conn, org_pk, experiment_id)
            found = conn.execute(
                _ARTIFACT.where(_r.c.experiment == experiment_pk, _r.c.pk > (after[0] if after else 0))
                .order_by(_r.c.pk)
                .limit(limit + 1)
            ).all()
        return page(found, limit, artifact, lambda r: (r[0],))

    def get_artifact(self, org_pk: int, experiment_id: str, artifact_id: str) -> Json:
        with self.db.read() as conn:
            experiment_pk = _experiment_pk(conn, org_pk, experiment_id)
            row = conn.execute(
                _ARTIFACT.where(_r.c.id == artifact_id, _r.c.experiment == experiment_pk)
            ).first()
        if row is None:
            raise NotFoundError("artifact", artifact_id)
        return artifact(row)

    def delete_artifact(self, org_pk: int, experiment_id: str, artifact_id: str) -> None:
        """The row goes; its content too when no other artifact uses it."""
        with self.db.write() as conn:
            experiment_pk = _experiment_pk(conn, org_pk, experiment_id)
            sha256 = conn.execute(
                delete(_r)
                .where(_r.c.id == artifact_id, _r.c.experiment == experiment_pk)
                .returning(_r.c.sha256)
            ).scalar()
            if sha256 is None:
                raise NotFoundError("artifact", artifact_id)
            self._release_contents(conn, [sha256])

    def _experiment_contents(self, conn: Connection, experiment_pk: int) -> list[str]:
        """The contents an experiment's artifacts use (read before deleteExperiment removes the rows)."""
        return list(
            conn.execute(select(_r.c.sha256).where(_r.c.experiment == experiment_pk).distinct()).scalars()
        )

    def _release_contents(self, conn: Connection, shas: Sequence[str]) -> None:
        """Inside the write transaction that removed artifact rows: remove each content no row uses any more,
        under its lock."""
        if not shas:
            return
        store = self._content_store()
        for sha256 in sorted(shas):  # one order, so two deletes sharing contents queue instead of deadlocking
            dialects.lock_content(conn, sha256)
            if not conn.execute(_IN_USE, {"sha256": sha256}).scalar():
                store.remove(sha256)
