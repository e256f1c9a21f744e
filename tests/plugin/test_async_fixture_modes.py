"""`async_tally_client` works in pytest-asyncio's default strict mode, as users meet it (issue 19): in a pytest run
of its own, with `asyncio_mode = strict` set and with nothing set (strict is pytest-asyncio's default), and a
test marked `@pytest.mark.asyncio` as strict mode asks. Auto mode is this suite's own (`test_pytest_plugin.py`).
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


@pytest.mark.parametrize(
    "ini", ["[pytest]\nasyncio_mode = strict\n", "[pytest]\n"], ids=["strict", "default"]
)
def test_the_async_fixture_in_strict_mode(pytester: pytest.Pytester, ini: str) -> None:
    pytester.makeini(ini)
    pytester.makepyfile(STRICT_TEST)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "ASYNC CLIENT AsyncTally" in result.stdout.str()
