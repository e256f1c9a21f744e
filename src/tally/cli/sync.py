"""`tally sync`: upload the spools of crashed, offline or interrupted runs (the logic is `tally.run._replay`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tally.cli import _exit
from tally.cli._app import settings
from tally.cli._failures import CliFailure

__all__ = ["sync"]


@click.command("sync")
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False), default=None, help="The spool directory."
)
@click.option(
    "--status", "status_only", is_flag=True, help="Only list pending spools and their event counts."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def sync(ctx: click.Context, directory: str | None, status_only: bool, as_json: bool) -> None:
    """Upload every pending run spool (exactly once), or list them with --status.

    The spool directory is --dir, else TALLY_SPOOL_DIR, else the user data directory. Events or annotations that
    can never be stored (the server refused them) do not hold the others back: they are kept, with the reason, in
    the run's dead-letter file beside its spool (<run>.dead-letter.jsonl, JSON lines), which is listed here until
    you delete it. Exit code 1 if a spool could not be synced (it is kept: run again), 6 if this sync put
    records in a dead-letter file.

    \b
    Examples:
      tally sync
      tally sync --status
      tally sync --dir /scratch/tally-spool --json
    """
    from tally._sync._run_port import RunPort
    from tally.run import spool_root, spool_status, sync_spools

    root = Path(directory) if directory else spool_root()
    if status_only:
        reports = spool_status(root)
    else:
        with settings(ctx).client() as client:
            reports = sync_spools(RunPort(client, owned=False), root)  # through the CLI's own client
    if as_json:
        click.echo(json.dumps([report.as_dict() for report in reports], indent=2))
    elif not reports:
        click.echo(f"no spools in {root}")
    for report in [] if as_json else reports:
        line = f"{report.state:8} {report.run_key}  {report.name or '-'}  experiment {report.experiment_id or '-'}"
        if not status_only and report.state not in ("in_use", "dead_letter"):
            line += (
                f"  stored {report.stored:,} (duplicates {report.duplicates:,})  rejected {report.rejected:,}"
            )
        if report.state != "dead_letter":
            line += f"  pending {report.pending:,}"
        click.echo(line)
        for segment, offset, size, reason in report.torn:
            click.echo(
                f"         lost: segment {segment}: {size} bytes at offset {offset} skipped ({reason})"
            )
        if report.error:
            click.echo(f"         error: {report.error}")
        if report.dead_letter:
            click.echo(
                f"         dead-letter: {report.dead_lettered:,} refused, kept in {report.dead_letter} "
                "(see why in it; re-send what matters, then delete it)"
            )
    if status_only:
        return
    if any(report.state == "failed" for report in reports):
        raise CliFailure(
            "a spool could not be synced; see above, then run `tally sync` again", _exit.API_ERROR
        )
    refused = sum(report.rejected for report in reports if report.state != "dead_letter")
    if refused:
        raise CliFailure(
            f"{refused:,} events or annotations could not be stored and were kept in dead-letter files; see above",
            _exit.REJECTED,
        )
