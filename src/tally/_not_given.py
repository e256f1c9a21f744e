"""`NOT_GIVEN`: an argument left out, unlike an explicit `None`.

Its own module, re-exported by `tally._types`, so that the client's signatures (`timeout=NOT_GIVEN`) import
without the public types and msgspec, which load with the first decoded answer (issue 21's import target)."""

from __future__ import annotations

__all__ = ["NOT_GIVEN", "NotGiven"]


class NotGiven:
    """The type of `NOT_GIVEN`: an argument left out, unlike an explicit `None` (which clears a field)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()
