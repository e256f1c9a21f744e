"""The pure parts of a run's capture (issue 21, "Capture"): git remotes lose their credentials, the command line its
secrets, and `fit` bounds what goes into the experiment's 8 KiB of metadata. The live side is
tests/sdk/integration/test_run_capture.py."""

from __future__ import annotations

import json

import pytest

from tally.run._capture import clean_remote, fit, redact_argv

SECRET_REMOTE = "https://user:ghp_secret1234567890@github.com/o/r.git"


@pytest.mark.parametrize(
    ("remote", "shown"),
    [
        (SECRET_REMOTE, "https://github.com/o/r.git"),
        ("https://ghp_abcdefgh12345678@github.com/o/r", "https://github.com/o/r"),
        (
            "https://oauth2:glpat-abcdefgh1234@gitlab.com/o/r.git?private_token=x#frag",
            "https://gitlab.com/o/r.git",
        ),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("ssh://git@example.com:2222/o/r.git", "ssh://git@example.com:2222/o/r.git"),
        ("ssh://git:pass@example.com/o/r.git", "ssh://example.com/o/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_remotes_lose_their_credentials(remote: str, shown: str) -> None:
    assert clean_remote(remote) == shown


def test_secret_arguments_are_masked() -> None:
    argv = [
        "train.py",
        "--hf-token",
        "hf_abcdefghijkl",
        "--password",
        "--verbose",
        "--data=https://u:p@host/x",
        "sk-abcdefghijklmnop",
        "+trainer.api_key=abc",
        "--secret=",
    ]
    assert redact_argv(argv) == [
        "train.py",
        "--hf-token",
        "***",
        "--password",
        "--verbose",
        "--data=https://host/x",
        "***",
        "+trainer.api_key=***",
        "--secret=***",
    ]


def test_fit_drops_packages_then_the_command() -> None:
    value = {"python": "3.12.3", "command": "x" * 500, "packages": {f"p{i}": "1.0" for i in range(100)}}
    fitted = fit(value, 1000)
    assert fitted is not None
    assert len(json.dumps(fitted, separators=(",", ":"))) <= 1000
    assert fitted["command"] == "x" * 500
    assert fitted["packages_omitted"] > 0
    fitted = fit(value, 100)
    assert fitted == {"python": "3.12.3"}
    assert fit(value, 5) is None
