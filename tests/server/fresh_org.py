"""A fresh organisation on the live server, for tests that read back everything of an organisation (its whole
metric catalog, its root folders): what they store reaches no other test's reads, and no other test's data makes
their reads slow."""

from __future__ import annotations

import uuid

import httpx

from tally import Tally
from tally_server import RunningServer

from .helpers import make_client

__all__ = ["FreshOrg"]


class FreshOrg:
    """A new organisation with an org key: an httpx client and an SDK client (`tally.Tally`, no retries: a 5xx
    must surface, not be retried away) holding it."""

    def __init__(self, server: RunningServer) -> None:
        _, self.key = server.repository.create_organization(f"fresh-{uuid.uuid4().hex[:8]}")
        self.server = server
        self.http = make_client(server, self.key)
        self.sdk = Tally(self.key, base_url=server.url, max_retries=0)
        self._opened: list[httpx.Client] = [self.http]

    def client(self, token: str) -> httpx.Client:
        """An httpx client holding `token` (closed with the organisation)."""
        self._opened.append(make_client(self.server, token))
        return self._opened[-1]

    def experiment(self) -> tuple[str, httpx.Client]:
        """A new experiment and an httpx client holding an ingestion key of it."""
        response = self.http.post("/v1/experiments", json={"name": f"e-{uuid.uuid4().hex[:8]}"})
        assert response.status_code == 201, response.text
        experiment_id = str(response.json()["id"])
        minted = self.http.post(f"/v1/experiments/{experiment_id}/ingestion-keys", json={})
        assert minted.status_code == 201, minted.text
        return experiment_id, self.client(minted.json()["token"])

    def close(self) -> None:
        for client in self._opened:
            client.close()
        self.sdk.close()
