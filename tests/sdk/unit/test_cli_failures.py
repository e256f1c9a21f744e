"""Which exit code and message each failure gets (pure: no server), and the missing-extra message."""

from __future__ import annotations

import pytest

import tally
from tally._extras import MissingExtraError, require
from tally.cli import _exit
from tally.cli._failures import failure_for


def _status(cls: type[tally.APIStatusError], status: int, code: str) -> tally.APIStatusError:
    return cls(
        "message",
        status_code=status,
        code=code,
        request_id="req_1",
        method="GET",
        url="http://x/v1/y",
        details=None,
    )


@pytest.mark.parametrize(
    ("error", "exit_code", "fix"),
    [
        (tally.ConfigurationError("No Tally API key found."), _exit.CONFIG, "No Tally API key"),
        (_status(tally.AuthenticationError, 401, "unauthenticated"), _exit.CONFIG, "tally auth login"),
        (_status(tally.PermissionDeniedError, 403, "forbidden"), _exit.CONFIG, "organisation key"),
        (_status(tally.NotFoundError, 404, "not_found"), _exit.NOT_FOUND, "check the id"),
        (_status(tally.ConflictError, 409, "invalid_transition"), _exit.API_ERROR, "invalid_transition"),
        (_status(tally.InternalServerError, 500, "internal"), _exit.API_ERROR, "internal"),
        (
            tally.APIConnectionError("refused", method="GET", url="http://x"),
            _exit.UNREACHABLE,
            "TALLY_BASE_URL",
        ),
        (tally.APITimeoutError("slow", method="GET", url="http://x"), _exit.UNREACHABLE, "TALLY_BASE_URL"),
        (MissingExtraError("pandas", "pandas"), _exit.CONFIG, "pip install 'tally-metrics[pandas]'"),
        (ValueError("status must be one of ..."), _exit.USAGE, "status must be"),
    ],
)
def test_each_failure_has_its_exit_code_and_one_line(error: Exception, exit_code: int, fix: str) -> None:
    failure = failure_for(error)
    assert failure is not None
    assert failure.exit_code == exit_code
    assert fix in failure.message
    assert "\n" not in failure.message


def test_exit_codes_are_distinct() -> None:
    codes = [_exit.OK, _exit.API_ERROR, _exit.USAGE, _exit.CONFIG, _exit.NOT_FOUND, _exit.UNREACHABLE]
    assert len(set(codes)) == len(codes)


def test_unknown_exceptions_are_not_swallowed() -> None:
    assert failure_for(RuntimeError("bug")) is None


def test_require_names_the_extra() -> None:
    with pytest.raises(
        MissingExtraError, match=r"needs no_such_package_xyz.*tally-metrics\[plot\]"
    ) as caught:
        require("no_such_package_xyz", "plot")
    assert isinstance(caught.value, ImportError)
    assert caught.value.extra == "plot"
    assert require("json", "plot").__name__ == "json"
