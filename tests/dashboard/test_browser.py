"""The dashboard in a real headless Chromium, against a live server: log in, find and sort runs, open a run,
compare three, zoom, log scale, a spike that must show, XSS payloads that must stay text, and a quiet console."""

from __future__ import annotations

import math

import pytest

from .conftest import KEY, DashboardServer, Tab
from .seed import LONG_POINTS, SPIKE_STEP, SPIKE_VALUE, XSS_METADATA, XSS_NAME

pytestmark = pytest.mark.integration


LOSS_CHART = "document.querySelector(\".chart[data-metric='loss']\").tallyChart"


def _names(tab: Tab) -> list[str]:
    return tab.page.locator("table.runs tbody tr td:nth-child(2)").all_inner_texts()


def test_log_in_find_runs_and_sort_by_a_summary_column(tab: Tab, dashboard: DashboardServer) -> None:
    tab.page.goto(dashboard.url + "/")  # no session: the login form
    assert tab.page.url.endswith("/login")
    tab.page.fill("#api_key", KEY)
    tab.page.click("button[type=submit]")
    tab.ready()
    assert set(_names(tab)) >= {"resnet-lr0.0001", "resnet-lr0.0003", "resnet-lr0.001", "long-run", XSS_NAME}
    names = _names(tab)  # newest first, by default
    assert names.index(XSS_NAME) < names.index("long-run") < names.index("resnet-lr0.001")

    tab.page.fill("input[name=q]", "resnet")
    tab.page.fill("input[name=cols]", "val/loss:min")
    tab.page.fill("input[name=meta]", "lr")
    tab.page.click("form.filters button[type=submit]")
    tab.ready()
    assert sorted(_names(tab)) == ["resnet-lr0.0001", "resnet-lr0.0003", "resnet-lr0.001"]

    tab.page.click("th >> text=val/loss min")
    tab.ready()
    ascending = _names(tab)
    mins = [float(v) for v in tab.page.locator("table.runs tbody td.num").all_inner_texts()]
    assert mins == sorted(mins)
    assert ascending == ["resnet-lr0.0003", "resnet-lr0.001", "resnet-lr0.0001"]
    assert tab.page.locator("table.runs tbody tr").first.locator("td").nth(6).inner_text() == "0.0003"

    tab.page.click("th >> text=val/loss min")
    tab.ready()
    assert _names(tab) == ascending[::-1]
    assert "order=-metric" in tab.page.url

    tab.page.fill("input[name=q]", "")
    tab.page.fill("input[name=where]", "optimizer=sgd")
    tab.page.click("form.filters button[type=submit]")
    tab.ready()
    assert _names(tab) == ["long-run"]
    assert tab.errors == []


def test_the_runs_table_pages(tab: Tab, dashboard: DashboardServer) -> None:
    tab.open(dashboard.login_link())
    tab.open("/?q=resnet&size=2&order=name")
    assert _names(tab) == ["resnet-lr0.0001", "resnet-lr0.0003"]
    tab.page.click("text=Next →")
    tab.ready()
    assert _names(tab) == ["resnet-lr0.001"]
    assert tab.page.locator("text=Next →").count() == 0
    tab.page.click("text=← Previous")
    tab.ready()
    assert _names(tab) == ["resnet-lr0.0001", "resnet-lr0.0003"]
    assert tab.errors == []


def test_bad_input_in_the_address_gets_the_apis_named_error(tab: Tab, dashboard: DashboardServer) -> None:
    tab.open(dashboard.login_link())
    tab.open("/?order=metric:val/loss:median")
    shown = tab.page.locator("main .error").inner_text()
    assert "order_by" in shown
    assert "invalid_request" in shown
    tab.open("/runs/exp_does_not_exist")
    assert "not_found" in tab.page.locator("main .error").inner_text()
    # the failed fetches are the console's only complaints
    assert all("status of 400" in e or "status of 404" in e for e in tab.errors)


def test_a_run_page_shows_metadata_tags_annotations_and_a_chart_per_metric(
    tab: Tab, dashboard: DashboardServer
) -> None:
    tab.open(dashboard.login_link())
    tab.page.click("text=resnet-lr0.0003")
    tab.ready()
    page = tab.page
    assert page.locator("h1").inner_text().startswith("resnet-lr0.0003")
    assert page.locator("h1 .status").inner_text() == "completed"
    assert page.locator(".meta-line .tag").all_inner_texts() == ["sweep", "resnet"]
    assert page.locator("table.kv").inner_text().split() == [
        "batch_size",
        "128",
        "lr",
        "0.0003",
        "optimizer",
        "adam",
    ]
    assert "lr warm-up ends" in page.locator(".notes").inner_text()
    assert [c.get_attribute("data-metric") for c in page.locator(".chart").all()] == [
        "train/loss",
        "val/loss",
    ]
    train = tab.chart("train/loss")
    assert train["runs"] == 1
    assert train["total"] == [400]
    assert train["buckets"] == [400]  # no more points than buckets: lossless
    assert tab.errors == []


def test_compare_three_runs_overlays_their_curves(tab: Tab, dashboard: DashboardServer) -> None:
    tab.open(dashboard.login_link())
    tab.page.fill("input[name=q]", "resnet")
    tab.page.click("form.filters button[type=submit]")
    tab.ready()
    for box in tab.page.locator("table.runs tbody input[type=checkbox]").all():
        box.check()
    tab.page.click("button.compare")
    tab.ready()
    assert tab.page.locator("h1").inner_text() == "Compare 3 runs"
    for metric in ("train/loss", "val/loss"):
        drawn = tab.chart(metric)
        assert drawn["runs"] == 3
        assert len(drawn["data"]) == 1 + 3 * 3  # steps, then mean, min and max of each run
    assert tab.errors == []


def test_a_one_step_spike_in_200000_points_is_drawn_and_zoom_refetches(
    tab: Tab, dashboard: DashboardServer
) -> None:
    tab.open(dashboard.login_link())
    tab.open(f"/runs/{dashboard.seeded.long}")
    drawn = tab.chart("loss")
    assert drawn["total"] == [LONG_POINTS]
    assert drawn["buckets"][0] <= 1000
    _steps, mean, _low, high = drawn["data"]
    assert max(high) == SPIKE_VALUE  # the band's top holds the spike, though its bucket's mean hides it
    assert max(mean) < SPIKE_VALUE / 10
    assert drawn["yMax"] >= SPIKE_VALUE

    # Drag across a narrow range around the spike: the chart refetches it at full resolution.
    box = tab.page.locator(".chart[data-metric='loss'] .u-over").bounding_box()
    assert box is not None
    at = box["x"] + box["width"] * SPIKE_STEP / LONG_POINTS
    with tab.page.expect_response(lambda r: "metrics/series" in r.url and "min_step" in r.url):
        tab.page.mouse.move(at - 3, box["y"] + 20)
        tab.page.mouse.down()
        tab.page.mouse.move(at + 3, box["y"] + 20, steps=4)
        tab.page.mouse.up()
    tab.page.wait_for_function(f"() => {LOSS_CHART}.range !== null")
    tab.page.wait_for_timeout(200)
    zoomed = tab.chart("loss")
    low_step, high_step = zoomed["range"]
    assert 0 < high_step - low_step < LONG_POINTS / 50
    assert zoomed["total"][0] < LONG_POINTS / 50
    assert low_step <= SPIKE_STEP <= high_step
    assert SPIKE_VALUE in zoomed["data"][3]
    assert zoomed["buckets"][0] > zoomed["total"][0] / 10  # finer: ~10 points per bucket or fewer

    with tab.page.expect_response(lambda r: "metrics/series" in r.url and "min_step" not in r.url):
        tab.page.dblclick(".chart[data-metric='loss'] .u-over")
    tab.page.wait_for_function(f"() => {LOSS_CHART}.range === null")
    assert tab.errors == []


def test_log_scale_and_smoothing(tab: Tab, dashboard: DashboardServer) -> None:
    tab.open(dashboard.login_link())
    tab.open(f"/runs/{dashboard.seeded.sweep[0]}")
    assert tab.chart("train/loss")["yDistr"] == 1
    tab.page.check("#log-y")
    assert tab.chart("train/loss")["yDistr"] == 3
    raw = tab.chart("train/loss")["data"][1]
    tab.page.locator("#smoothing").fill("0.9")
    smoothed = tab.chart("train/loss")["data"]
    assert smoothed[1] != raw
    assert math.isclose(smoothed[1][0], raw[0])  # debiased: the first point is itself
    assert "exponential moving average" in tab.page.locator(".chart-controls").inner_text()
    tab.page.uncheck("#log-y")
    assert tab.chart("train/loss")["yDistr"] == 1
    assert tab.errors == []


def test_xss_payloads_stay_inert_text(tab: Tab, dashboard: DashboardServer) -> None:
    tab.open(dashboard.login_link())
    assert XSS_NAME in _names(tab)
    tab.open(f"/runs/{dashboard.seeded.xss}")
    page = tab.page
    assert page.locator("h1").inner_text().startswith(XSS_NAME)
    assert XSS_METADATA["note"] in page.locator("table.kv").inner_text()
    page.hover("table.kv")
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x], main script, main svg, main b").count() == 0
    assert tab.errors == []


def test_the_chart_of_a_million_points_transfers_at_most_150_kb(tab: Tab, dashboard: DashboardServer) -> None:
    million = dashboard.million.result(timeout=300)
    tab.open(dashboard.login_link())
    tab.open(f"/runs/{million}")
    assert tab.chart("loss")["total"] == [1_000_000]
    # Bytes over the wire (compressed bodies and headers), as the browser counted them.
    series_bytes = tab.page.evaluate(
        """performance.getEntriesByType('resource')
            .filter((e) => e.name.includes('/metrics/series'))
            .reduce((n, e) => n + e.transferSize, 0)"""
    )
    print(f"series transfer for a 1,000,000-point chart: {series_bytes:,} bytes")
    assert 0 < series_bytes <= 150_000
    assert tab.errors == []


def test_a_running_experiment_refreshes_on_its_own(tab: Tab, dashboard: DashboardServer) -> None:
    client = dashboard.client
    experiment = client.experiments.create("live-run")
    client.metrics.ingest(experiment.id, [{"name": "loss", "value": 1.0, "step": s} for s in range(10)])
    tab.page.clock.install()
    tab.open(dashboard.login_link())
    tab.open(f"/runs/{experiment.id}")
    assert tab.chart("loss")["total"] == [10]
    client.metrics.ingest(experiment.id, [{"name": "loss", "value": 0.5, "step": s} for s in range(10, 25)])
    tab.page.clock.run_for(6_000)
    tab.page.wait_for_function(f"() => {LOSS_CHART}.series[0].total_points === 25")
    client.experiments.update_status(experiment.id, "completed")
    tab.page.clock.run_for(6_000)
    tab.page.wait_for_function("() => document.querySelector('h1 .status').textContent === 'completed'")
    assert tab.errors == []


def test_a_group_has_a_column_a_filter_and_compares_as_a_whole(tab: Tab, dashboard: DashboardServer) -> None:
    """The ranks of a distributed job (`client.run(..., group=...)`): the runs table shows their group, filters by
    it, and compares the group's runs together, in rank order."""
    client = dashboard.client
    ranks = []
    for rank in (10, 2, 0):  # created out of order: compared by rank all the same
        experiment = client.experiments.create(f"ddp-rank{rank}", group="ddp-job-7")
        client.metrics.ingest(
            experiment.id, [{"name": "loss", "value": rank + 1.0, "step": s} for s in range(5)]
        )
        ranks.append(experiment)
    other = client.experiments.create("ddp-other", group="ddp-job-8")
    tab.open(dashboard.login_link())
    tab.open("/?q=ddp-")
    header = tab.page.locator("table.runs thead th").all_inner_texts()
    assert "Group" in header
    column = header.index("Group")
    cells = tab.page.locator(f"table.runs tbody tr td:nth-child({column + 1})").all_inner_texts()
    assert sorted(cells) == ["ddp-job-7", "ddp-job-7", "ddp-job-7", "ddp-job-8"]

    tab.page.click("table.runs td.group a >> text=ddp-job-8")  # a group links to its own table
    tab.ready()
    assert "group=ddp-job-8" in tab.page.url
    assert _names(tab) == ["ddp-other"]
    assert other.group == "ddp-job-8"

    tab.page.fill("input[name=group]", "ddp-job-7")
    tab.page.click("form.filters button[type=submit]")
    tab.ready()
    assert sorted(_names(tab)) == ["ddp-rank0", "ddp-rank10", "ddp-rank2"]
    tab.page.click("button.compare-group")
    tab.ready()
    assert tab.page.locator("h1").inner_text() == "Compare group ddp-job-7 (3 runs)"
    assert tab.page.locator("ul.legend li a").all_inner_texts() == ["ddp-rank0", "ddp-rank2", "ddp-rank10"]
    drawn = tab.chart("loss")
    assert drawn["runs"] == 3
    assert drawn["data"][1][0] == 1.0  # the first run's means: rank 0 first
    assert tab.errors == []
