"""Start-up: the reference server as an ASGI application, built from the contract over a repository.

`create_app` checks its settings, opens (and migrates) the database, bootstraps the first organisation and builds
the application; `build_app` does the last step over a repository already open. The layers it wires together:
`routes` (one route per path of the contract), `dashboard` (the pages at `/`, a client of the contract),
`pipeline` (auth, validation, idempotency, errors: the same for every operation), `middleware` (request ids and
the access log) and `storage` (the repository). The application's state holds the repository, the pipeline and
the spec; its lifespan closes the repository on shutdown.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

from tally_server._spec import Spec, load_spec
from tally_server.contents import DEFAULT_MAX_ARTIFACT_BYTES, ContentStore
from tally_server.dashboard import dashboard_routes
from tally_server.middleware import RequestIdMiddleware
from tally_server.pipeline import Pipeline
from tally_server.routes import not_found, routes
from tally_server.storage.backends import is_postgres, open_repository
from tally_server.storage.repository import Repository

__all__ = ["build_app", "create_app", "default_artifacts_dir", "validate_bootstrap_key"]

# Artifact downloads are bytes already packed (or not worth gzipping at level 5 as they stream); a 206 is never
# compressed (Starlette leaves it alone anyway).
_NOT_GZIPPED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/octet-stream")


def validate_bootstrap_key(value: str, flag: str = "--bootstrap-key") -> str:
    """A bootstrap key must look like an organisation key: `tk_org_` and at least 16 URL-safe characters."""
    if not re.fullmatch(r"tk_org_[A-Za-z0-9_-]{16,256}", value):
        raise ValueError(
            f"{flag} must be an organisation key: 'tk_org_' followed by 16 to 256 URL-safe characters"
        )
    return value


def default_artifacts_dir(db: str | os.PathLike[str] | None) -> str | None:
    """Where artifact contents go when no directory is given: `<file>.artifacts` next to a SQLite file; None (a
    scratch directory, removed on shutdown) for a scratch or a PostgreSQL database."""
    if db is None or str(db) == ":memory:" or is_postgres(db):
        return None
    return str(db) + ".artifacts"


def build_app(
    repo: Repository,
    *,
    rate_limit: float | None = None,
    validate_responses: bool = False,
    spec: Spec | None = None,
) -> Starlette:
    """The application over an existing repository (which it closes on shutdown)."""
    spec = spec or load_spec()
    if repo.contents is None:  # a repository opened by hand (tests): artifacts in a scratch directory
        repo.contents = ContentStore.temporary()
    pipeline = Pipeline(spec, repo, rate_limit, validate_responses)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        repo.close()
        if repo.contents is not None:
            repo.contents.close()

    app = Starlette(
        routes=[*routes(spec, pipeline), *dashboard_routes(repo)],
        # gzip for clients that ask (browsers, httpx): a chart's 1,000 buckets are ~180 KB of JSON, ~50 KB gzipped.
        # Level 5: most of level 9's saving at a fraction of its CPU. Answers under 1 KiB go as they are.
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(
                GZipMiddleware, minimum_size=1024, compresslevel=5, exclude_content_types=_NOT_GZIPPED
            ),
        ],
        exception_handlers={404: not_found, HTTPException: not_found},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.repo = repo
    app.state.pipeline = pipeline
    app.state.spec = spec
    return app


def create_app(
    *,
    db: str | os.PathLike[str] | None = None,
    bootstrap_key: str | None = None,
    rate_limit: float | None = None,
    validate_responses: bool = False,
    fsync: bool = True,
    artifacts_dir: str | os.PathLike[str] | None = None,
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
) -> Starlette:
    """The reference server as an ASGI application.

    `db` is a SQLite file (created if missing, migrated if old); None or ":memory:" is a scratch database that
    disappears on shutdown; `postgresql://user@host/dbname` is a PostgreSQL database (migrated if old), which
    several server processes can share; a URL of any other scheme is refused (ValueError).
    On a fresh database an organisation "default" is created with an org API key:
    `bootstrap_key` when given (it must start with `tk_org_`), else a generated one, available as
    `app.state.api_key` (None when the database already had an organisation and no bootstrap key was given).
    `rate_limit` is requests per second per key (off when None). `validate_responses` checks every answer
    against the contract and turns a mismatch into a 500 (the test suite turns it on; so does the environment
    variable TALLY_SERVER_VALIDATE_RESPONSES=1). `fsync=False` commits without fsync (see
    `tally_server.storage.database`): acknowledged writes survive the server's crash, not the machine's.
    `artifacts_dir` holds artifact contents (`default_artifacts_dir(db)` when None: next to a SQLite file, a
    scratch directory for a scratch or PostgreSQL database; several PostgreSQL-backed processes must be given one
    shared directory); `max_artifact_bytes` is the largest artifact taken (5 GiB by default).
    """
    if bootstrap_key is not None:
        validate_bootstrap_key(bootstrap_key)
    if rate_limit is not None and not rate_limit > 0:
        raise ValueError("rate_limit must be a positive number of requests per second")
    validate_responses = validate_responses or os.environ.get("TALLY_SERVER_VALIDATE_RESPONSES", "") in (
        "1",
        "true",
    )
    if max_artifact_bytes < 1:
        raise ValueError("max_artifact_bytes must be at least 1")
    repo = open_repository(db, fsync=fsync)
    try:
        where = artifacts_dir if artifacts_dir is not None else default_artifacts_dir(db)
        if where is None:
            repo.contents = ContentStore.temporary(max_bytes=max_artifact_bytes)
        else:
            repo.contents = ContentStore(where, max_bytes=max_artifact_bytes)
        result = repo.bootstrap(bootstrap_key, mint_if_existing=False)
        app = build_app(repo, rate_limit=rate_limit, validate_responses=validate_responses)
    except BaseException:
        repo.close()
        if repo.contents is not None:
            repo.contents.close()
        raise
    app.state.bootstrap = result
    app.state.api_key = bootstrap_key if bootstrap_key is not None else result.new_token
    return app
