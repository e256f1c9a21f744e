"""`async_tally_client` works in pytest-asyncio's default strict mode, as users meet it (issue 19): in a pytest run
of its own with nothing set (strict is pytest-asyncio's default; the run's header says so), and a test marked
`@pytest.mark.asyncio` as strict mode asks. Auto mode is this suite's own (`test_pytest_plugin.py`). One run (an
embedded server and a pytest start-up, a few seconds): `asyncio_mode = strict` set explicitly is the same mode.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

STRICT_TEST = """
    import pytest

    @pytest.mark.asyncio
    async def test_uses_the_async_client(async_tally_client):
        experiment = await async_tally_client.experiments.create("strict-mode")
        fetched = await async_tally_client.experiments.get(experiment.id)
        assert fetched.name == "strict-mode"
        print("ASYNC CLIENT", type(async_tally_client).__name__)
"""


def test_the_async_fixture_in_the_default_strict_mode(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(STRICT_TEST)
    # Only the two plugins in play (the entry points also load schemathesis, hypothesis, ...: seconds of start-up).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins = ["-p", "pytest_asyncio.plugin", "-p", "tally.testing.pytest_plugin"]
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *plugins)
    result.assert_outcomes(passed=1)
    assert "ASYNC CLIENT AsyncTally" in result.stdout.str()
    assert "mode=Mode.STRICT" in result.stdout.str()
