"""`tally serve` (also `python -m tally_server`): run the reference server in the foreground."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import platformdirs

from tally_server._credentials_file import credentials_path, read_credentials, write_credentials
from tally_server.app import create_app, validate_bootstrap_key
from tally_server.storage.backends import UnsupportedDatabaseError, redact_url

__all__ = ["default_db_path", "serve"]

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def default_db_path() -> Path:
    """Where `tally serve` keeps its data unless told otherwise."""
    return platformdirs.user_data_path("tally") / "server.sqlite3"


def _check_bootstrap_key(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate_bootstrap_key(value, "--bootstrap-key (or TALLY_SERVER_BOOTSTRAP_KEY)")
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
    envvar="TALLY_SERVER_BOOTSTRAP_KEY",
    default=None,
    callback=_check_bootstrap_key,
    help="Make this tk_org_... value an org API key (for scripts and tests). "
    "[env TALLY_SERVER_BOOTSTRAP_KEY]",
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
    rate_limit: float | None,
    no_fsync: bool,
    log_level: str,
) -> None:
    """Run the Tally reference server."""
    import uvicorn

    from tally_server._http import uvicorn_config

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    database = db if db is not None else str(default_db_path())
    shown_db = redact_url(database)
    try:
        app = create_app(db=database, bootstrap_key=bootstrap_key, rate_limit=rate_limit, fsync=not no_fsync)
    except UnsupportedDatabaseError as exc:
        raise click.BadParameter(str(exc), param_hint="'--db'") from None
    except Exception as exc:
        raise click.ClickException(f"cannot open the database {shown_db}: {exc}") from exc
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
    config = uvicorn_config(app, host=host, port=port, log_level=log_level, log_config=None)
    uvicorn.Server(config).run()
