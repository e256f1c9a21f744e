"""`tally metrics`: list and export points, compare series, the catalog, metadata values, and plot curves."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec
from tally_api_types import limits as _contract

from tally._groups import group_series
from tally._pagination import MAX_PAGE_SIZE
from tally._types import CompareResult, CompareRow
from tally.cli._app import settings
from tally.cli._output import Output, json_option
from tally.cli._params import metadata_option, pairs

if TYPE_CHECKING:
    from tally import Tally

__all__ = ["compare_all", "metrics"]

_POINT_COLUMNS = ("name", "step", "value", "timestamp", "metadata")
_MAX_SERIES = _contract.COMPARE_METRICS_REQUEST_SERIES_MAX_ITEMS  # series per compare request


@click.group()
def metrics() -> None:
    """Metric points: list, compare, catalog, values, plot."""


@metrics.command("list")
@click.argument("experiment_id")
@click.option("--name", help="Only this metric.")
@click.option("--min-step", type=int, help="From this step on.")
@click.option("--max-step", type=int, help="Up to this step.")
@click.option("--metadata", metavar="KEY=VALUE", help="Only points whose metadata has KEY=VALUE.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many points.")
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    experiment_id: str,
    name: str | None,
    min_step: int | None,
    max_step: int | None,
    metadata: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """An experiment's metric points, by name, then step.

    \b
    Examples:
      tally metrics list exp_... --name train/loss --max-step 100
      tally metrics list exp_... --metadata split=val --json | jq .value
    """
    key, value = next(iter(pairs((metadata,)).items())) if metadata else (None, None)
    out = Output(as_json)
    with settings(ctx).client() as client:
        points = client.metrics.list(
            experiment_id,
            name=name,
            min_step=min_step,
            max_step=max_step,
            metadata_key=key,
            metadata_value=value,
            limit=limit,
            page_size=MAX_PAGE_SIZE if limit is None else None,
        )
        out.listing(points, _POINT_COLUMNS, empty="no points match")


@metrics.command("export")
@click.argument("experiment_id")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["ndjson", "csv"]),
    default="ndjson",
    show_default=True,
    help="One JSON point a line, or CSV with a header line.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file (whole or not at all) instead of standard output.",
)
@click.option("--name", help="Only this metric.")
@click.option("--min-step", type=int, help="From this step on.")
@click.option("--max-step", type=int, help="Up to this step.")
@click.option("--metadata", metavar="KEY=VALUE", help="Only points whose metadata has KEY=VALUE.")
@click.pass_context
def export(
    ctx: click.Context,
    experiment_id: str,
    format_: str,
    output: Path | None,
    name: str | None,
    min_step: int | None,
    max_step: int | None,
    metadata: str | None,
) -> None:
    """Every point of an experiment, streamed in one request (constant memory, any size), by name, then step.

    \b
    Examples:
      tally metrics export exp_... > points.ndjson
      tally metrics export exp_... --format csv --output points.csv
    """
    key, value = next(iter(pairs((metadata,)).items())) if metadata else (None, None)
    filters: dict[str, Any] = {
        "name": name, "min_step": min_step, "max_step": max_step, "metadata_key": key, "metadata_value": value,
    }  # fmt: skip
    chosen: Any = format_  # "ndjson" or "csv", as click checked
    with settings(ctx).client() as client:
        if output is not None:
            count = client.metrics.export_to(experiment_id, output, format=chosen, **filters)
            click.echo(f"{count} points written to {output}", err=True)
            return
        stdout = sys.stdout
        if format_ == "csv":
            writer = csv.writer(stdout, lineterminator="\n")
            writer.writerow(_EXPORT_COLUMNS)
            for row in client.metrics.export(experiment_id, format="csv", **filters):
                writer.writerow([row.get(column, "") for column in _EXPORT_COLUMNS])
            return
        encode = msgspec.json.Encoder().encode
        for point in client.metrics.export(experiment_id, **filters):
            stdout.write(encode(point).decode())
            stdout.write("\n")


_EXPORT_COLUMNS = ("name", "value", "step", "timestamp", "metadata", "client_event_id")
_PNG_POINTS = 1000
"""Buckets per curve of a PNG: more than its 800 pixels across."""


def _selectors(experiment_ids: tuple[str, ...], name: str, metadata: dict[str, str]) -> list[dict[str, Any]]:
    if len(experiment_ids) > _MAX_SERIES:
        raise click.UsageError(f"at most {_MAX_SERIES} experiments at once, not {len(experiment_ids)}")
    return [
        {"experiment_id": experiment_id, "name": name, **({"metadata": metadata} if metadata else {})}
        for experiment_id in experiment_ids
    ]


def compare_all(
    client: Tally, selectors: list[dict[str, Any]], min_step: int | None, max_step: int | None
) -> CompareResult:
    """Every aligned row in the window: compare answers at most 10,000 rows, so ask again after the last step
    while the answer says it was truncated."""
    rows: list[CompareRow] = []
    first: CompareResult | None = None
    start = min_step
    while True:
        part: CompareResult = client.metrics.compare(
            selectors,
            min_step=start,
            max_step=max_step,
            limit=_contract.COMPARE_METRICS_REQUEST_LIMIT_MAXIMUM,
        )
        first = first or part  # its series count every step of the whole window
        rows.extend(part.rows)
        if not part.truncated or not part.rows:
            return CompareResult(series=first.series, rows=tuple(rows), truncated=part.truncated)
        start = part.rows[-1].step + 1


def _labels(client: Tally, experiment_ids: tuple[str, ...]) -> list[str]:
    """Experiment names for the legend; the id is added where two experiments share a name."""
    names = [client.experiments.get(experiment_id).name for experiment_id in experiment_ids]
    return [
        f"{name} ({experiment_id})" if names.count(name) > 1 else name
        for name, experiment_id in zip(names, experiment_ids, strict=True)
    ]


@metrics.command("compare")
@click.argument("experiment_ids", nargs=-1, metavar="EXPERIMENT_ID...")
@click.option("--name", required=True, help="The metric to compare (for example train/loss).")
@click.option(
    "--group",
    metavar="GROUP",
    help="Compare every experiment of this group (a job's ranks), not EXPERIMENT_IDs.",
)
@metadata_option("Only points with this metadata (repeat for several).")
@click.option("--min-step", type=int, help="From this step on.")
@click.option("--max-step", type=int, help="Up to this step.")
@json_option
@click.pass_context
def compare(
    ctx: click.Context,
    experiment_ids: tuple[str, ...],
    name: str,
    group: str | None,
    metadata: tuple[str, ...],
    min_step: int | None,
    max_step: int | None,
    as_json: bool,
) -> None:
    """One metric of several experiments, aligned by step: one row per step, one column per experiment.

    \b
    Examples:
      tally metrics compare exp_a exp_b --name val/loss --metadata split=val
      tally metrics compare exp_a exp_b --name loss --json | jq '.rows[-1]'
      tally metrics compare --group job-123 --name train/loss
    """
    if bool(experiment_ids) == (group is not None):
        raise click.UsageError("give EXPERIMENT_IDs or --group GROUP (one of them)")
    out = Output(as_json)
    with settings(ctx).client() as client:
        if group is not None:
            members = list(client.experiments.list(group=group, limit=_MAX_SERIES + 1))
            try:
                selectors = group_series(group, members, name, pairs(metadata))
            except ValueError as error:
                raise click.UsageError(str(error)) from None
            experiment_ids = tuple(selector["experiment_id"] for selector in selectors)
        else:
            selectors = _selectors(experiment_ids, name, pairs(metadata))
        result = compare_all(client, selectors, min_step, max_step)
        if as_json:
            out.document(result)
            return
        labels = _labels(client, experiment_ids)
    count = out.table(["step", *labels], ([row.step, *row.values] for row in result.rows), title=name)
    if count == 0:
        out.note("no points in this window")


@metrics.command("catalog")
@click.option(
    "--experiment", "experiment_id", metavar="EXPERIMENT_ID", help="Only this experiment's metrics."
)
@click.option("--folder", "folder_id", metavar="FOLDER_ID", help="Only metrics in this folder and below.")
@click.option("--name-prefix", metavar="TEXT", help="Only names starting with this.")
@json_option
@click.pass_context
def catalog(
    ctx: click.Context,
    experiment_id: str | None,
    folder_id: str | None,
    name_prefix: str | None,
    as_json: bool,
) -> None:
    """The metric names seen, with point counts and metadata keys.

    \b
    Examples:
      tally metrics catalog --experiment exp_...
      tally metrics catalog --name-prefix train/ --json | jq -r .name
    """
    columns = ("name", "count", "experiment_count", "metadata_keys", "last_seen")
    out = Output(as_json)
    with settings(ctx).client() as client:
        entries = client.metric_catalog.list(
            experiment_id=experiment_id, folder_id=folder_id, name_prefix=name_prefix, page_size=MAX_PAGE_SIZE
        )
        out.listing(entries, columns, title="metrics", empty="no metrics yet")


@metrics.command("values")
@click.argument("metric_name")
@click.argument("metadata_key")
@click.option("--experiment", "experiment_id", metavar="EXPERIMENT_ID", help="Only this experiment.")
@click.option("--folder", "folder_id", metavar="FOLDER_ID", help="Only this folder and below.")
@json_option
@click.pass_context
def values(
    ctx: click.Context,
    metric_name: str,
    metadata_key: str,
    experiment_id: str | None,
    folder_id: str | None,
    as_json: bool,
) -> None:
    """The distinct values of one metadata key of one metric, with point counts.

    \b
    Examples:
      tally metrics values loss split
      tally metrics values loss split --experiment exp_... --json
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        found = client.metric_catalog.inspect_values(
            metric_name,
            metadata_key,
            experiment_id=experiment_id,
            folder_id=folder_id,
            page_size=MAX_PAGE_SIZE,
        )
        if as_json:
            out.lines(found)
            return
        count = out.table(
            ("value", "count"), ([v.value, v.count] for v in found), title=f"{metric_name}: {metadata_key}"
        )
    if count == 0:
        out.note("no values")


@metrics.command("plot")
@click.argument("experiment_ids", nargs=-1, required=True, metavar="EXPERIMENT_ID...")
@click.option("--name", required=True, help="The metric to plot (for example train/loss).")
@metadata_option("Only points with this metadata (repeat for several).")
@click.option(
    "--smooth",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Moving average of the mean line over N plotted points (the min/max band stays exact).",
)
@click.option("--log-y", is_flag=True, help="Logarithmic y axis.")
@click.option("--min-step", type=int, help="From this step on.")
@click.option("--max-step", type=int, help="Up to this step.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write a PNG image here instead (needs the [plot] extra: matplotlib).",
)
@click.option(
    "--width", type=click.IntRange(min=20), help="Terminal plot width in characters (default: fit)."
)
@click.option(
    "--height", type=click.IntRange(min=5), default=20, show_default=True, help="Terminal plot height."
)
@click.pass_context
def plot(
    ctx: click.Context,
    experiment_ids: tuple[str, ...],
    name: str,
    metadata: tuple[str, ...],
    smooth: int,
    log_y: bool,
    min_step: int | None,
    max_step: int | None,
    output: Path | None,
    width: int | None,
    height: int,
) -> None:
    """Curves of one metric for several experiments: in the terminal, or as a PNG with --output.

    Each curve is read downsampled by the server (`client.metrics.series`): the mean of each step range as a
    line, with its min/max band where a range holds several values, so a spike always shows and a curve of
    millions of points costs one small request. With several --metadata pairs the points are read whole
    (the series filters on one metadata pair).

    \b
    Examples:
      tally metrics plot exp_a exp_b --name loss
      tally metrics plot exp_a exp_b --name loss --metadata split=train --smooth 20 --log-y
      tally metrics plot exp_a exp_b --name loss --output curves.png
    """
    from tally import _plotting

    selectors = _selectors(experiment_ids, name, pairs(metadata))
    out = Output(False)
    columns = width or max(min(out.console.width - 20, 120), 40)
    # braille draws two dots per character; an image is 800 pixels wide
    max_points = _PNG_POINTS if output is not None else 2 * columns
    with settings(ctx).client() as client:
        labels = _labels(client, experiment_ids)
        filters = pairs(metadata)
        if len(filters) > 1:
            result = compare_all(client, selectors, min_step, max_step)
            found = _plotting.curves(result, labels)
        else:
            (key, value), *_ = [*filters.items(), (None, None)]
            found = [
                _plotting.series_curve(
                    client.metrics.series(
                        experiment_id, name, max_points=max_points, min_step=min_step, max_step=max_step,
                        metadata_key=key, metadata_value=value,
                    ),
                    label,
                )
                for experiment_id, label in zip(experiment_ids, labels, strict=True)
            ]  # fmt: skip
    lines = [_plotting.smooth(curve, smooth) for curve in found]
    if not any(curve.steps for curve in lines):
        raise click.ClickException(
            f"no points of {name!r} in these experiments (see `tally metrics catalog`)"
        )
    title = name + (f" (smoothed over {smooth})" if smooth > 1 else "")
    if output is not None:
        _plotting.render_png(lines, output, metric=name, log_y=log_y, title=title)
        click.echo(f"wrote {output}")
        return
    if log_y:
        lines = [_plotting.log_scale(curve) for curve in lines]
    text = _plotting.render_terminal(
        lines, metric=name, log_y=log_y, width=columns, height=height, color=out.for_people
    )
    click.echo(f"{title}\n{text}", color=out.for_people)  # click would strip the colours when not a tty
