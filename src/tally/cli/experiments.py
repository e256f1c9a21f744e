"""`tally experiments`: list with filters, show, summary, create, update, tag, set status, move, archive,
unarchive, delete."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from tally._pagination import MAX_PAGE_SIZE
from tally._types import ExperimentStatus, Folder
from tally.cli._app import settings
from tally.cli._confirm import confirm_or_abort, yes_option
from tally.cli._output import Output, json_option
from tally.cli._params import metadata_option, pairs

__all__ = ["experiments"]

_STATUSES = [status.value for status in ExperimentStatus]
_COLUMNS = ("id", "name", "status", "folder_id", "created_at", "ended_at")


@click.group()
def experiments() -> None:
    """Experiments and their lifecycle."""


@experiments.command("list")
@click.option("--folder", "folder_id", metavar="FOLDER_ID", help="Only experiments in this folder.")
@click.option("--status", type=click.Choice(_STATUSES), help="Only experiments with this status.")
@click.option("--name-prefix", metavar="TEXT", help="Only names starting with this.")
@click.option("--tag", metavar="TAG", help="Only experiments that carry this tag.")
@click.option("--group", metavar="GROUP", help="Only the experiments of this group (a job's ranks).")
@click.option("--include-archived", is_flag=True, help="List archived experiments too (left out by default).")
@click.option("--created-after", type=click.DateTime(), help="Created after this time (UTC if no zone).")
@click.option("--created-before", type=click.DateTime(), help="Created before this time (UTC if no zone).")
@click.option(
    "--metadata",
    "metadata_filter",
    metavar="KEY[=VALUE]",
    help="Only experiments whose metadata has KEY (dots for nested keys), at VALUE if given: a JSON literal "
    '(0.0003, true, null, "adam"), else the text as a string.',
)
@click.option(
    "--order-by",
    metavar="ORDER",
    help="created_at (default), -created_at (newest first), name, -name, or metric:NAME:last|min|max "
    "(- in front: descending).",
)
@click.option("--limit", type=click.IntRange(min=0), help="At most this many.")
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    folder_id: str | None,
    status: str | None,
    name_prefix: str | None,
    tag: str | None,
    group: str | None,
    include_archived: bool,
    created_after: datetime | None,
    created_before: datetime | None,
    metadata_filter: str | None,
    order_by: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Experiments matching every filter given, oldest first unless --order-by says otherwise.

    \b
    Examples:
      tally experiments list --status running
      tally experiments list --order-by -created_at --limit 10
      tally experiments list --order-by metric:val/loss:min --limit 5
      tally experiments list --metadata optim.lr=0.0003
      tally experiments list --folder fld_... --name-prefix resnet --limit 20
      tally experiments list --tag baseline --include-archived
      tally experiments list --group job-123
      tally experiments list --created-after 2026-11-01 --json | jq -r .id
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        found = client.experiments.list(
            folder_id=folder_id,
            status=status,
            name_prefix=name_prefix,
            tag=tag,
            group=group,
            include_archived=include_archived,
            created_after=_utc(created_after),
            created_before=_utc(created_before),
            order_by=order_by,
            limit=limit,
            **_metadata_filter(metadata_filter),
            page_size=MAX_PAGE_SIZE if limit is None else None,
        )
        columns = (*_COLUMNS, "archived_at") if include_archived else _COLUMNS
        out.listing(found, columns, title="experiments", empty="no experiments match")


def _metadata_filter(text: str | None) -> dict[str, Any]:
    """`KEY` or `KEY=VALUE` as the SDK's metadata_key / metadata_value: VALUE is read as JSON when it is a JSON
    literal (a number, true, false, null, a quoted string), else taken as a string (`optim=adam`)."""
    if text is None:
        return {}
    key, sep, raw = text.partition("=")
    if not sep:
        return {"metadata_key": key}
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, list | dict):
        value = raw
    return {"metadata_key": key, "metadata_value": value}


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


@experiments.command("show")
@click.argument("experiment_id")
@json_option
@click.pass_context
def show(ctx: click.Context, experiment_id: str, as_json: bool) -> None:
    """One experiment, with its folder's name and its metric names.

    \b
    Examples:
      tally experiments show exp_...
      tally experiments show exp_... --json | jq .status
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        experiment = client.experiments.get(experiment_id)
        if as_json:
            out.document(experiment)
            return
        folder: Folder | None = client.folders.get(experiment.folder_id) if experiment.folder_id else None
        metrics = [entry.name for entry in client.metric_catalog.list(experiment_id=experiment_id, limit=50)]
    out.fields(
        [
            ("id", experiment.id),
            ("name", experiment.name),
            ("status", experiment.status),
            ("folder", f"{folder.name} ({folder.id})" if folder else None),
            ("description", experiment.description),
            ("metadata", experiment.metadata),
            ("group", experiment.group),
            ("created", experiment.created_at),
            ("ended", experiment.ended_at),
            ("metrics", metrics),
        ]
    )


_SUMMARY_COLUMNS = (
    "name",
    "metadata",
    "count",
    "first_step",
    "last_step",
    "last",
    "min",
    "max",
    "last_logged_at",
)


@experiments.command("summary")
@click.argument("experiment_id")
@click.option("--name", metavar="METRIC", help="Only this metric.")
@json_option
@click.pass_context
def summary(ctx: click.Context, experiment_id: str, name: str | None, as_json: bool) -> None:
    """Each metric of an experiment (name and metadata set): count, step range, last, min, max, last logged.

    \b
    Examples:
      tally experiments summary exp_...
      tally experiments summary exp_... --name val/loss --json | jq .min
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        found = client.experiments.summary(experiment_id, name=name)
    if as_json:
        out.lines(found.metrics)
        return
    rows = ([getattr(m, c) for c in _SUMMARY_COLUMNS] for m in found.metrics)
    if out.table(_SUMMARY_COLUMNS, rows, title=f"metrics of {experiment_id}") == 0:
        out.note("no metrics logged yet")


@experiments.command("create")
@click.argument("name")
@click.option("--folder", "folder_id", metavar="FOLDER_ID", help="Create it in this folder.")
@click.option("--description", help="A description.")
@metadata_option("Metadata to attach (repeat the option for several).")
@click.option("--group", metavar="GROUP", help="Create it in this group (e.g. a job's id).")
@json_option
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    folder_id: str | None,
    description: str | None,
    metadata: tuple[str, ...],
    group: str | None,
    as_json: bool,
) -> None:
    """Create an experiment (status `running`); prints its id.

    \b
    Examples:
      tally experiments create resnet50-baseline --metadata lr=3e-4 --metadata seed=1
      EXP=$(tally experiments create sweep-7 --folder fld_...)
    """
    with settings(ctx).client() as client:
        experiment = client.experiments.create(
            name, folder_id=folder_id, description=description, metadata=pairs(metadata) or None, group=group
        )
    if as_json:
        Output(True).document(experiment)
    else:
        click.echo(experiment.id)


@experiments.command("set-status")
@click.argument("experiment_id")
@click.argument("status", type=click.Choice([s for s in _STATUSES if s != "running"]))
@json_option
@click.pass_context
def set_status(ctx: click.Context, experiment_id: str, status: str, as_json: bool) -> None:
    """End a running experiment: completed, failed or cancelled (terminal states are final).

    \b
    Examples:
      tally experiments set-status exp_... completed
    """
    with settings(ctx).client() as client:
        experiment = client.experiments.update_status(experiment_id, status)
    if as_json:
        Output(True).document(experiment)
    else:
        click.echo(f"{experiment.id} {experiment.status}")


@experiments.command("move")
@click.argument("experiment_id")
@click.option("--folder", "folder_id", metavar="FOLDER_ID", help="The folder to move it into.")
@click.option("--root", "to_root", is_flag=True, help="Take it out of every folder.")
@json_option
@click.pass_context
def move(ctx: click.Context, experiment_id: str, folder_id: str | None, to_root: bool, as_json: bool) -> None:
    """Move an experiment into a folder (--folder), or out of every folder (--root).

    \b
    Examples:
      tally experiments move exp_... --folder fld_...
      tally experiments move exp_... --root
    """
    if (folder_id is None) == (not to_root):
        raise click.UsageError("give exactly one of --folder FOLDER_ID or --root")
    with settings(ctx).client() as client:
        experiment = client.experiments.move(experiment_id, None if to_root else folder_id)
    if as_json:
        Output(True).document(experiment)
    else:
        click.echo(f"{experiment.id} -> {experiment.folder_id or '(top level)'}")


@experiments.command("delete")
@click.argument("experiment_id")
@yes_option
@click.pass_context
def delete(ctx: click.Context, experiment_id: str, yes: bool) -> None:
    """Delete an experiment with everything in it: its points, summaries, annotations and ingestion keys.
    Asks first (--yes to skip); it cannot be undone.

    \b
    Examples:
      tally experiments delete exp_...
      tally experiments delete exp_... --yes
    """
    with settings(ctx).client() as client:
        experiment = client.experiments.get(experiment_id)  # a missing id fails (exit 4) before the question
        confirm_or_abort(
            f"Delete experiment {experiment.name!r} ({experiment.id}) with all its points, annotations and "
            "ingestion keys? This cannot be undone.",
            yes,
        )
        client.experiments.delete(experiment_id, confirm=True)
    click.echo(f"deleted {experiment_id}")


@experiments.command("update")
@click.argument("experiment_id")
@click.option("--name", help="The new name.")
@click.option("--description", help="The new description.")
@click.option("--clear-description", is_flag=True, help="Remove the description.")
@metadata_option("The new metadata, replacing the old whole (repeat the option for several).")
@click.option("--clear-metadata", is_flag=True, help="Remove all its metadata.")
@json_option
@click.pass_context
def update(
    ctx: click.Context,
    experiment_id: str,
    name: str | None,
    description: str | None,
    clear_description: bool,
    metadata: tuple[str, ...],
    clear_metadata: bool,
    as_json: bool,
) -> None:
    """Change an experiment's name, description or metadata (tags: `tally experiments tag`).

    \b
    Examples:
      tally experiments update exp_... --name resnet50-lr3e-4
      tally experiments update exp_... --description "the baseline" --metadata lr=3e-4 --metadata seed=1
      tally experiments update exp_... --clear-metadata
    """
    if description is not None and clear_description:
        raise click.UsageError("give --description or --clear-description, not both")
    if metadata and clear_metadata:
        raise click.UsageError("give --metadata or --clear-metadata, not both")
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if description is not None or clear_description:
        changes["description"] = description
    if metadata or clear_metadata:
        changes["metadata"] = pairs(metadata) or None
    if not changes:
        raise click.UsageError(
            "give --name, --description, --clear-description, --metadata or --clear-metadata"
        )
    with settings(ctx).client() as client:
        experiment = client.experiments.update(experiment_id, **changes)
    if as_json:
        Output(True).document(experiment)
    else:
        click.echo(f"{experiment.id} updated")


@experiments.command("tag")
@click.argument("experiment_id")
@click.option("--add", "added", multiple=True, metavar="TAG", help="A tag to add (repeat for several).")
@click.option(
    "--remove", "removed", multiple=True, metavar="TAG", help="A tag to remove (repeat for several)."
)
@json_option
@click.pass_context
def tag(
    ctx: click.Context, experiment_id: str, added: tuple[str, ...], removed: tuple[str, ...], as_json: bool
) -> None:
    """Add tags to an experiment or remove them; the others stay, in their order. Prints the tags it has then.

    \b
    Examples:
      tally experiments tag exp_... --add baseline --add resnet
      tally experiments tag exp_... --remove draft
    """
    if not added and not removed:
        raise click.UsageError("give --add or --remove (each may repeat)")
    with settings(ctx).client() as client:
        current = client.experiments.get(experiment_id).tags
        tags = [t for t in current if t not in removed]
        tags += [t for t in dict.fromkeys(added) if t not in tags and t not in removed]
        experiment = client.experiments.update(experiment_id, tags=tags)
    if as_json:
        Output(True).document(experiment)
    else:
        click.echo(f"{experiment.id} tags: {', '.join(experiment.tags) or '(none)'}")


@experiments.command("archive")
@click.argument("experiment_id")
@json_option
@click.pass_context
def archive(ctx: click.Context, experiment_id: str, as_json: bool) -> None:
    """Archive an experiment: lists leave it out (--include-archived shows it) and it refuses metrics and
    annotations until unarchived. Its status and data stay.

    \b
    Examples:
      tally experiments archive exp_...
    """
    with settings(ctx).client() as client:
        experiment = client.experiments.archive(experiment_id)
    if as_json:
        Output(True).document(experiment)
    else:
        click.echo(f"{experiment.id} archived")


@experiments.command("unarchive")
@click.argument("experiment_id")
@json_option
@click.pass_context
def unarchive(ctx: click.Context, experiment_id: str, as_json: bool) -> None:
    """Unarchive an experiment: listed again, and accepting data again if it is running.

    \b
    Examples:
      tally experiments unarchive exp_...
    """
    with settings(ctx).client() as client:
        experiment = client.experiments.unarchive(experiment_id)
    if as_json:
        Output(True).document(experiment)
    else:
        click.echo(f"{experiment.id} unarchived")
