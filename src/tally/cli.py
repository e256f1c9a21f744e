"""The `tally` command: `tally serve`, `tally auth login`, `tally auth status`, `tally sync`.

`tally serve` is the reference server's command, imported only when it is run, so the SDK's CLI does not
load the server otherwise.
"""

from __future__ import annotations

import sys

import click

from tally._credentials import (
    DEFAULT_BASE_URL,
    credentials_path,
    redact,
    write_credentials_file,
)
from tally._errors import TallyError

__all__ = ["cli", "main"]


class _LazyGroup(click.Group):
    """A group whose `serve` command comes from `tally_server.cli` when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "serve"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "serve" and cmd_name not in self.commands:
            try:
                from tally_server.cli import serve
            except ImportError as exc:  # pragma: no cover - only without the server's dependencies
                raise click.ClickException(f"`tally serve` needs the reference server: {exc}") from exc
            return serve
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="tally-metrics")
def cli() -> None:
    """Tally: experiment metrics from the command line."""


@cli.group()
def auth() -> None:
    """Log in and check credentials."""


@auth.command("login")
@click.option("--api-key", prompt=True, hide_input=True, help="An organisation API key (tk_org_...).")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True, help="The server's URL.")
def login(api_key: str, base_url: str) -> None:
    """Check an API key against the server, then save it to the credentials file (mode 0600)."""
    from tally._sync._client import Tally

    try:
        with Tally(api_key=api_key, base_url=base_url, max_retries=1) as client:
            status = client.auth.status()
    except TallyError as error:
        raise click.ClickException(f"the key was not accepted, nothing saved: {error}") from error
    path = write_credentials_file(api_key, base_url.rstrip("/"), credentials_path())
    click.echo(
        f"Logged in to {base_url} as organisation {status.organization_name} ({status.key_kind} key "
        f"{redact(api_key)}); saved to {path}"
    )


@auth.command("status")
def status() -> None:
    """Show which credentials the SDK resolves and what the server says about them."""
    from tally._sync._client import Tally

    try:
        with Tally() as client:
            result = client.auth.status()
            base_url = client.base_url
    except TallyError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"server:       {base_url}")
    click.echo(f"source:       {result.credential_source}")
    click.echo(f"organisation: {result.organization_name} ({result.organization_id})")
    click.echo(f"key:          {result.key_id} ({result.key_kind})")
    click.echo(f"scopes:       {', '.join(result.scopes)}")


# ---- tally sync: upload the spools of crashed, offline or interrupted runs (tally.run._replay) ----------------
@cli.command("sync")
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False), default=None, help="The spool directory."
)
@click.option(
    "--status", "status_only", is_flag=True, help="Only list pending spools and their event counts."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def sync(directory: str | None, status_only: bool, as_json: bool) -> None:
    """Upload every pending run spool (exactly once), or list them with --status.

    The spool directory is --dir, else TALLY_SPOOL_DIR, else the user data directory. Exit code 1 if a spool
    could not be synced.

    \b
    Examples:
      tally sync
      tally sync --status
      tally sync --dir /scratch/tally-spool --json
    """
    import json
    from pathlib import Path

    from tally.run import spool_root, spool_status, sync_spools

    root = Path(directory) if directory else spool_root()
    if status_only:
        reports = spool_status(root)
    else:
        from tally._sync._client import Tally

        try:
            with Tally(offline=False) as client:
                reports = sync_spools(client, root)
        except TallyError as error:
            raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps([report.as_dict() for report in reports], indent=2))
    elif not reports:
        click.echo(f"no spools in {root}")
    for report in [] if as_json else reports:
        line = f"{report.state:8} {report.run_key}  {report.name or '-'}  experiment {report.experiment_id or '-'}"
        if status_only or report.state == "in_use":
            line += f"  pending {report.pending:,}"
        else:
            line += (
                f"  stored {report.stored:,} (duplicates {report.duplicates:,})  rejected {report.rejected:,}"
            )
            line += f"  pending {report.pending:,}"
        click.echo(line)
        for segment, offset, size, reason in report.torn:
            click.echo(
                f"         lost: segment {segment}: {size} bytes at offset {offset} skipped ({reason})"
            )
        if report.error:
            click.echo(f"         error: {report.error}")
    if any(report.state == "failed" for report in reports):
        sys.exit(1)


def main() -> None:
    """The console script's entry point."""
    sys.exit(cli.main(standalone_mode=True))


if __name__ == "__main__":
    main()
