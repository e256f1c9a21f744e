"""The pytest plugin that SDK users get through the `pytest11` entry point, exercised as they would use it."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from tally import AsyncTally, Tally

pytest_plugins = ["pytester"]


def test_the_plugin_is_registered_through_the_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("tally") == "tally.testing.pytest_plugin"


def test_readme_example_logs_a_loss_curve(tally_client: Tally) -> None:
    """The README's example test, verbatim in spirit: a user's training code logging to a real local server."""
    experiment = tally_client.experiments.create("unit-test")
    result = tally_client.metrics.ingest(
        experiment.id, [{"name": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(100)]
    )
    assert result.accepted == 100
    points = list(tally_client.metrics.list(experiment.id, name="loss"))
    assert [p.step for p in points] == list(range(100))


async def test_async_client_fixture(async_tally_client: AsyncTally) -> None:
    experiment = await async_tally_client.experiments.create("async-unit-test")
    assert (await async_tally_client.experiments.get(experiment.id)).name == "async-unit-test"


ISOLATION_PROBE = """
    seen = []

    def test_first(tally_server, tally_client):
        seen.append(tally_server.url)
        tally_client.folders.create("only-one-of-me")

    def test_second(tally_server, tally_client):
        seen.append(tally_server.url)
        names = [f.name for f in tally_client.folders.list()]
        # Same server: the first test's folder is there. Own server: the database starts empty.
        print("SERVERS", len(set(seen)), "FOLDERS", names)
"""


@pytest.mark.parametrize(
    ("args", "servers", "folders"),
    [
        ((), 1, "['only-one-of-me']"),
        (("--tally-isolation=function",), 2, "[]"),
    ],
)
def test_isolation_per_session_or_per_function(
    pytester: pytest.Pytester, args: tuple[str, ...], servers: int, folders: str
) -> None:
    pytester.makepyfile(ISOLATION_PROBE)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=2)
    assert f"SERVERS {servers} FOLDERS {folders}" in result.stdout.str()


def test_isolation_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntally_isolation = function\n")
    pytester.makepyfile(ISOLATION_PROBE)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert "SERVERS 2 FOLDERS []" in result.stdout.str()


def test_a_bad_isolation_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntally_isolation = module\n")
    pytester.makepyfile("def test_x(tally_server): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    assert "tally_isolation must be one of session, function" in result.stdout.str() + result.stderr.str()
