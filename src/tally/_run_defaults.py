"""The run's defaults that `client.run(...)`'s signature shows, outside `tally.run` so that the client can name
them without importing the run (its spool, sender, capture and replay), which a program that never calls
`client.run()` does not need (`from tally import Tally` stays cheap: tests/sdk/unit/test_lazy_imports.py)."""

from __future__ import annotations

__all__ = ["DEFAULT_CAP_BYTES"]

DEFAULT_CAP_BYTES = 1 << 30
"""The default size cap of one run's spool: 1 GiB."""
