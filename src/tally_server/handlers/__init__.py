"""One handler per operation of the contract, by `operationId`."""

from __future__ import annotations

from tally_server._call import Handler
from tally_server.handlers import (
    annotation,
    artifacts,
    catalog,
    experiments,
    folders,
    ingestion_keys,
    metrics,
    system,
)

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Handler] = {
    **system.HANDLERS,
    **folders.HANDLERS,
    **experiments.HANDLERS,
    **metrics.HANDLERS,
    **catalog.HANDLERS,
    **ingestion_keys.HANDLERS,
    **annotation.HANDLERS,
    **artifacts.HANDLERS,
}
