"""`tally serve` (also `python -m tally_server`): run the reference server in the foreground."""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path

import click
import platformdirs
from click.core import ParameterSource

from tally_credentials import credentials_path, read_credentials, write_credentials
from tally_server._http import HttpLimits, bind_socket
from tally_server.app import create_app, validate_bootstrap_key
from tally_server.contents import DEFAULT_MAX_ARTIFACT_BYTES
from tally_server.storage.backends import UnsupportedDatabaseError, is_postgres, redact_url

__all__ = ["default_db_path", "serve"]

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_LIMITS = HttpLimits()  # the defaults of the HTTP edge, shown by --help
_KEY_ENV = "TALLY_SERVER_BOOTSTRAP_KEY"
_KEY_FILE_ENV = "TALLY_SERVER_BOOTSTRAP_KEY_FILE"
_GC_YOUNG_THRESHOLD = 50_000  # see serve(): more than one full ingest request holds


def default_db_path() -> Path:
    """Where `tally serve` keeps its data unless told otherwise."""
    return platformdirs.user_data_path("tally") / "server.sqlite3"


def _check_bootstrap_key(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        validate_bootstrap_key(value, f"--bootstrap-key (or {_KEY_ENV})")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if ctx.get_parameter_source("bootstrap_key") == ParameterSource.COMMANDLINE:
        # Any local user can read a process's arguments (ps, /proc/<pid>/cmdline); its environment and a
        # private file only its owner (and root).
        click.echo(
            f"warning: --bootstrap-key on the command line is visible to every user of this machine (ps); "
            f"pass it in the environment variable {_KEY_ENV} or in a file with --bootstrap-key-file instead.",
            err=True,
        )
    return value


def _read_bootstrap_key_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> str | None:
    """The key in the file (surrounding whitespace and a final newline ignored), validated."""
    if value is None:
        return None
    try:
        text = value.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {value}: {exc}") from None
    try:
        return validate_bootstrap_key(text, f"the content of {value}")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
@click.option(
    "--db",
    envvar=["TALLY_SERVER_DATABASE_URL", "TALLY_SERVER_DB"],
    default=None,
    help="SQLite file (created if missing); ':memory:' for a scratch database; or postgresql://user@host/dbname "
    "for PostgreSQL, which several server processes can share. "
    "[default: the user data directory's tally/server.sqlite3; env TALLY_SERVER_DATABASE_URL or TALLY_SERVER_DB]",
)
@click.option(
    "--bootstrap-key",
    envvar=_KEY_ENV,
    default=None,
    callback=_check_bootstrap_key,
    help="Make this tk_org_... value an org API key (for scripts and tests). Prefer the environment variable "
    "or --bootstrap-key-file: a command line is visible to every local user. [env TALLY_SERVER_BOOTSTRAP_KEY]",
)
@click.option(
    "--bootstrap-key-file",
    envvar=_KEY_FILE_ENV,
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_read_bootstrap_key_file,
    help="Read the bootstrap key from this file (a Docker or Kubernetes secret, a systemd credential). "
    "[env TALLY_SERVER_BOOTSTRAP_KEY_FILE]",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Requests per second allowed per API key (burst of the same size). Off by default.",
)
@click.option(
    "--no-fsync",
    is_flag=True,
    default=False,
    help="Do not fsync each commit (synchronous=NORMAL): faster, but acknowledged writes can be lost on a power "
    "loss or an OS crash (a crash of the server alone loses nothing). For benchmarks and throwaway data.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=_LIMITS.header_timeout,
    show_default=True,
    help="Seconds a client has to send a request line and its headers (from connecting, or from the first byte "
    "of a later request on the connection); then the connection is closed, with a 408 if a request had begun.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=_LIMITS.body_timeout,
    show_default=True,
    help="Seconds a client has to send a request body once its headers arrived; then 408 and the connection "
    "is closed.",
)
@click.option(
    "--max-header-bytes",
    type=click.IntRange(min=1024),
    default=_LIMITS.max_header_bytes,
    show_default=True,
    help="Largest request line plus headers, in bytes; larger is 414 (the URL) or 431 (headers).",
)
@click.option(
    "--limit-concurrency",
    type=click.IntRange(min=1),
    default=_LIMITS.limit_concurrency,
    show_default=True,
    help="Most requests in flight at once (each may hold a body of up to 5 MiB); more are answered 503 "
    "unavailable with Retry-After: 1.",
)
@click.option(
    "--artifacts-dir",
    envvar="TALLY_SERVER_ARTIFACTS_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for artifact contents (created if missing). Several server processes on one PostgreSQL "
    "database must share one. [default: next to the SQLite file (<file>.artifacts); for PostgreSQL the user "
    "data directory's tally/artifacts; env TALLY_SERVER_ARTIFACTS_DIR]",
)
@click.option(
    "--max-artifact-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_ARTIFACT_BYTES,
    show_default=True,
    help="Largest artifact upload, in bytes; larger is 413 payload_too_large (refused before it is read when "
    "it declares its length).",
)
@click.option(
    "--log-level",
    type=click.Choice(_LOG_LEVELS),
    default="info",
    show_default=True,
    help="Logging verbosity.",
)
def serve(
    host: str,
    port: int,
    db: str | None,
    bootstrap_key: str | None,
    bootstrap_key_file: str | None,
    rate_limit: float | None,
    no_fsync: bool,
    header_timeout: float,
    body_timeout: float,
    max_header_bytes: int,
    limit_concurrency: int,
    artifacts_dir: Path | None,
    max_artifact_bytes: int,
    log_level: str,
) -> None:
    """Run the Tally reference server.

    \b
    Examples:
      tally serve                                    # http://127.0.0.1:8787, data in the user data directory
      tally serve --port 0 --db ./tally.sqlite3      # a free port: printed, and saved for Tally("local")
      TALLY_SERVER_BOOTSTRAP_KEY=tk_org_... tally serve --db postgresql://tally@db.internal/tally
    """
    import uvicorn

    from tally_server._http import uvicorn_config

    if bootstrap_key is not None and bootstrap_key_file is not None:
        raise click.UsageError(
            "give the bootstrap key once: --bootstrap-key or --bootstrap-key-file, not both"
        )
    bootstrap_key = bootstrap_key if bootstrap_key is not None else bootstrap_key_file
    limits = HttpLimits(header_timeout, body_timeout, max_header_bytes, limit_concurrency)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    database = db if db is not None else str(default_db_path())
    shown_db = redact_url(database)
    try:
        if artifacts_dir is None and is_postgres(database):
            artifacts_dir = default_db_path().parent / "artifacts"
        app = create_app(
            db=database,
            bootstrap_key=bootstrap_key,
            rate_limit=rate_limit,
            fsync=not no_fsync,
            artifacts_dir=artifacts_dir,
            max_artifact_bytes=max_artifact_bytes,
        )
    except UnsupportedDatabaseError as exc:
        raise click.BadParameter(str(exc), param_hint="'--db'") from None
    except Exception as exc:
        raise click.ClickException(f"cannot open the database {shown_db}: {exc}") from exc
    try:  # listen before announcing the URL: `--port 0` gets its port here
        sock = bind_socket(host, port)
    except OSError as exc:
        app.state.repo.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    port = int(sock.getsockname()[1])
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}"
    bootstrap = app.state.bootstrap
    where = "a scratch database" if database == ":memory:" else shown_db
    click.echo(f"Tally reference server on {url} (data: {where})")
    if bootstrap.new_token is not None:
        click.echo("Created organisation 'default' with an org API key (shown once, keep it safe):")
        click.echo(f"  {bootstrap.new_token}")
        path = write_credentials(bootstrap.new_token, url)
        click.echo(f"Wrote it with the server's URL to {path}; Tally('local') uses it.")
    elif bootstrap_key is not None:
        path = write_credentials(bootstrap_key, url)
        click.echo(f"Using the bootstrap key; wrote it with the server's URL to {path}.")
    else:
        saved = read_credentials()
        key = saved.get("api_key") if saved else None
        if isinstance(key, str) and app.state.repo.authenticate(key) is not None:
            if saved and saved.get("base_url") != url:
                write_credentials(key, url)
            click.echo(f"The org API key of this database is in {credentials_path()}.")
        else:
            click.echo(
                "This database already has an organisation; its API key was printed on its first start."
            )
    config = uvicorn_config(app, limits=limits, host=host, port=port, log_level=log_level, log_config=None)
    # This process is the server alone: what start-up made (the spec, its validators, SQLAlchemy's compiled
    # statements) lives as long as it does, so take it out of the collector's view. Without this, every full
    # collection walks those objects again (SQLAlchemy about doubles them), which costs ingest a few percent.
    # Not done by the embedded server (`start_server`): freezing belongs to whoever owns the process.
    gc.collect()
    gc.freeze()
    # A 10,000-event ingest holds ~35,000 containers while it runs (the decoded events, the rows): with the
    # default young-generation threshold (700) each request ran ~37 young and ~3 middle collections that walked
    # them again and again, ~8% of the ingest (py-spy --native: gc_collect_main). The threshold counts live
    # containers made since the last collection (freed ones are taken off), so this one lets a batch come and go
    # uncollected; cyclic garbage waits for at most this many objects (a few MB).
    gc.set_threshold(_GC_YOUNG_THRESHOLD)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
