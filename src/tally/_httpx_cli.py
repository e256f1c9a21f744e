"""A training job must not pay for httpx's command line: `httpx.main` is loaded when it is called, not imported.

httpx's `__init__` ends with ``try: from ._main import main / except ImportError: <a stub that says to install
httpx[cli]>`` (httpx 0.28, `httpx/__init__.py`). So wherever click, rich and pygments are installed (the `[cli]`
extra of Tally, a notebook's environment), `import httpx` imports its whole command line with them: 186 ms of
the 289 ms that `from tally import Tally` took with every extra installed, against 107 ms for `import httpx` in a
venv holding only httpx (`python -X importtime`, 2026-12-04).

`import tally` therefore registers, before any module of Tally imports httpx, a stand-in for `httpx._main` in
`sys.modules` (where the import system looks first): httpx's `from ._main import main` then takes the stand-in's
`main`, which imports the real `httpx._main` the first time it is called (or any other attribute of the module is
read) and hands over to it, so `httpx.main(...)` and `from httpx._main import ...` keep working for anyone who
uses them. Nothing is done when httpx was imported already (its command line is loaded then, or absent).
"""

from __future__ import annotations

import _thread
import importlib
import importlib.machinery
import sys

# What `import tally` loads must stay this small (tests/sdk/unit/test_lazy_imports.py): no `typing`, no `types`,
# no `threading` here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

__all__ = ["defer_httpx_cli"]

NAME = "httpx._main"
_LOCK = _thread.allocate_lock()
_MISSING = (
    "The httpx command line client could not run because the required dependencies were not installed.\n"
    "Make sure you've installed everything with: pip install 'httpx[cli]'"
)
"""httpx's own words when its command line cannot be imported (its `__init__`'s fallback)."""


class _DeferredModule(type(sys)):  # type: ignore[misc]
    """`httpx._main` until something other than `main` is read from it: then the real module."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_real(), name)


class _Main:
    """`httpx.main`: calls the real command (a click command), imported on the first call."""

    __name__ = "main"
    __qualname__ = "main"
    __module__ = NAME

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            command = _real().main
        except ImportError:
            print(_MISSING)
            sys.exit(1)
        return command(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_real().main, name)

    def __repr__(self) -> str:
        return "<httpx.main, imported on first use by tally>"


def _real() -> ModuleType:
    """The real `httpx._main`, imported now if it is not yet (replacing the stand-in in `sys.modules`)."""
    with _LOCK:
        current = sys.modules.get(NAME)
        if current is not None and not isinstance(current, _DeferredModule):
            return current
        sys.modules.pop(NAME, None)
        try:
            return importlib.import_module(NAME)
        except BaseException:
            if current is not None:
                sys.modules[NAME] = current  # still deferred: a later call tries again and fails the same way
            raise


def defer_httpx_cli() -> None:
    """Register the stand-in for `httpx._main`, unless httpx (or its command line) is imported already."""
    if "httpx" in sys.modules or NAME in sys.modules:
        return
    module = _DeferredModule(NAME, "httpx's command line, imported on first use (see tally._httpx_cli)")
    module.__spec__ = importlib.machinery.ModuleSpec(NAME, None)
    module.main = _Main()
    sys.modules[NAME] = module
