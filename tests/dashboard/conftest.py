"""Fixtures of the dashboard's browser tests: Debian's chromium driven by Playwright, against a live server.

Playwright's own browser downloads are never used (they do not work on our machines): `make test` installs
Debian's `chromium` with apt-get when it is missing, as it does PostgreSQL, and Playwright launches it by path.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tally import Tally
from tally_server import RunningServer, start_server

from .seed import Seeded, seed, seed_million

KEY = "tk_org_" + "DashboardBrowserTestsKey01234567"
# What Chromium needs on these machines: no sandbox as root, and none of the background traffic that a closed
# network refuses (each refusal would be noise in the console).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-default-apps",
]


def chromium_path() -> str:
    """Debian's chromium; a missing one fails the run with the way to install it (never a skip)."""
    found = os.environ.get("TALLY_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "the dashboard tests need Debian's chromium: run `make chromium` (apt-get install chromium)"
        )
    return found


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread while it is
# open, and every asyncio test after it would then fail ("Cannot run the event loop while another loop is
# running"). So the browser is closed when the last test of this folder is done.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@dataclass
class DashboardServer:
    server: RunningServer
    client: Tally
    seeded: Seeded
    million: Future[str]
    """The id of an experiment with a 1,000,000-point curve, ingested in the background while the other tests
    run (it takes the server some seconds)."""

    @property
    def url(self) -> str:
        return self.server.url

    def login_link(self) -> str:
        return self.client.auth.login_link().url(self.server.url)


@pytest.fixture(scope="package")
def dashboard() -> Iterator[DashboardServer]:
    """A live server (scratch SQLite, response validation on) holding the runs of `seed.py`."""
    with (
        start_server(bootstrap_key=KEY, validate_responses=True) as server,
        Tally(KEY, base_url=server.url) as c,
        ThreadPoolExecutor(1) as pool,
    ):
        seeded = seed(c)
        yield DashboardServer(server, c, seeded, pool.submit(seed_million, c))


@dataclass
class Tab:
    """A page of a fresh browser context (no cookies), with what its console said."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> Page:
        """Go to a page of the dashboard and wait until it has drawn everything it loads."""
        self.page.goto(path if path.startswith("http") else self.base + path)
        self.ready()
        return self.page

    def ready(self) -> None:
        self.page.wait_for_selector("body[data-ready=true]", timeout=30_000)

    def chart(self, metric: str) -> Any:
        """What a chart drew: its runs, its range and the data handed to uPlot (the series' columns)."""
        return self.page.evaluate(
            """(metric) => {
                const chart = [...document.querySelectorAll('.chart')]
                    .find((el) => el.dataset.metric === metric).tallyChart;
                return {
                    runs: chart.runs.length,
                    range: chart.range,
                    data: chart.plot.data,
                    yMax: chart.plot.scales.y.max,
                    yDistr: chart.plot.scales.y.distr,
                    buckets: chart.series.map((s) => s.buckets.length),
                    total: chart.series.map((s) => s.total_points),
                };
            }""",
            metric,
        )


@pytest.fixture
def tab(browser: Browser, dashboard: DashboardServer) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    opened = Tab(page, dashboard.url)

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            opened.errors.append(f"{message.type}: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: opened.errors.append(f"pageerror: {error}"))
    yield opened
    context.close()
