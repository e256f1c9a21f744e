"""Optional parts of Tally and the one message that names the extra to install when one is missing.

The bare install (`pip install tally-metrics`) is the SDK alone. The reference server, the command line, the
aiohttp transport, DataFrames and image plots are extras (`pyproject.toml`, `[project.optional-dependencies]`).
Every place that needs one calls `require(...)` (or `missing_extra(...)` for a name it already failed to import),
so the user reads one line that says what to install, never a bare `ModuleNotFoundError`.
"""

from __future__ import annotations

from types import ModuleType

from tally._lazy import load

__all__ = ["EXTRAS", "MissingExtraError", "missing_extra", "require"]

EXTRAS: dict[str, str] = {
    "server": "the reference server (`tally serve`, tally.embedded, the pytest fixtures)",
    "cli": "the `tally` command line",
    "aiohttp": "AsyncTally's aiohttp transport",
    "pandas": "pandas DataFrames",
    "polars": "polars DataFrames",
    "plot": "image plots (`tally metrics plot --output`)",
    "system": "the run's system metrics sampler",
    "lightning": "the PyTorch Lightning logger (tally.integrations.lightning)",
    "transformers": "the Hugging Face Trainer callback (tally.integrations.transformers)",
    "keras": "the Keras callback (tally.integrations.keras)",
}
"""What each extra brings, in the words the message uses."""


class MissingExtraError(ImportError):
    """An optional package is not installed; the message is one line naming the extra that brings it."""

    def __init__(self, module: str, extra: str, feature: str | None = None) -> None:
        self.module = module
        self.extra = extra
        what = feature or EXTRAS.get(extra, f"the {extra} extra")
        super().__init__(
            f"{what} needs {module}, which is not installed: pip install 'tally-metrics[{extra}]' "
            f"(or: uv add 'tally-metrics[{extra}]')",
            name=module,
        )


def missing_extra(error: ModuleNotFoundError, extra: str, feature: str | None = None) -> MissingExtraError:
    """The error to raise `from` an ImportError of an optional package."""
    return MissingExtraError(error.name or str(error), extra, feature)


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import `module` (one thread at a time: `tally._lazy`), or raise `MissingExtraError` naming `extra`."""
    try:
        return load(module)
    except ModuleNotFoundError as error:
        # A package that is absent (it, or one of its own dependencies) means the extra is not installed; any
        # other ImportError is a real fault inside an installed package and propagates as it is.
        raise MissingExtraError(error.name or module, extra, feature) from error
