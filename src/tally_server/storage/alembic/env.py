"""Alembic's environment for `tally_server.storage.migrate`: it runs the revisions on the connection that
`migrate.upgrade` opened and locked (`config.attributes["connection"]`), inside that caller's transaction. No
alembic.ini, no logging set-up: the server's own logging shows Alembic's "Running upgrade ..." lines."""

from __future__ import annotations

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
