"""The SDK refuses metadata over the contract's caps before sending it, and the ingestion keys it mints expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tally._async._client import SDK_KEY_LIFETIME_SECONDS

from ..conftest import AnyClient, call, collect, unique

pytestmark = pytest.mark.integration

_DEEP: Any = "leaf"
for _ in range(9):
    _DEEP = {"a": _DEEP}


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({"notes": "x" * 9000}, "8192-byte limit"),
        (_DEEP, "nested more than 8 levels"),
        ({"k" * 65: 1}, "1 to 64 characters"),
        ({f"k{i}": i for i in range(65)}, "at most 64"),
    ],
)
async def test_metadata_over_a_cap_is_refused_before_it_is_sent(
    client: AnyClient, metadata: dict[str, Any], says: str
) -> None:
    name = unique("capped")
    with pytest.raises(ValueError, match=says) as raised:
        await call(client.experiments.create(name, metadata=metadata))
    assert str(raised.value).startswith("metadata")
    folder = await call(client.folders.create(unique("f")))
    with pytest.raises(ValueError, match=says):
        await call(client.folders.patch(folder.id, metadata=metadata))
    assert await collect(client.experiments.list(name_prefix=name)) == []


async def test_the_ingestion_keys_the_client_mints_expire(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("minted")))
    await call(client.metrics.ingest(experiment.id, [{"name": "loss", "value": 1.0, "step": 0}]))
    (key,) = await collect(client.ingestion_keys.list(experiment.id))
    assert key.name == "tally-sdk"
    assert key.expires_at is not None
    assert key.expires_at - key.created_at == timedelta(seconds=SDK_KEY_LIFETIME_SECONDS)


async def test_a_key_can_be_created_with_an_expiry(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("expiring")))
    key = await call(client.ingestion_keys.create(experiment.id, name="ci", expires_in_seconds=3600))
    assert key.expires_at is not None
    assert key.expires_at - key.created_at == timedelta(hours=1)
    forever = await call(client.ingestion_keys.create(experiment.id))
    assert forever.expires_at is None
