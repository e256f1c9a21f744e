"""Throughput of the reference server: ingest (10,000-event batches) and listing (pages of 1,000).

The server runs in its own process (`python -m tally_server`, a scratch database file) so that the client does
not share its GIL; request bodies are encoded before the clock starts, so the figures are the server's.

    uv run python scripts/bench_server.py [--batches 30] [--batch-size 10000] [--db PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import msgspec

from tally_server.process import ServerProcess, start_server_process

KEY = "tk_org_" + "BenchmarkBootstrapKey00000000000"[:32]


def _start(db: str, config_dir: str) -> ServerProcess:
    # The key goes in the environment, not on the command line (where `ps` shows it to every local user).
    env = {**os.environ, "TALLY_CONFIG_DIR": config_dir, "TALLY_SERVER_BOOTSTRAP_KEY": KEY}
    args = ["--db", db, "--log-level", "warning"]
    return start_server_process(args, logs=Path(config_dir) / "server-logs", env=env)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=30, help="ingest batches to send (default 30)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="events per batch (default 10,000)")
    parser.add_argument("--db", default=None, help="database file (default: a temporary file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tally-bench-") as scratch:
        db = args.db or str(Path(scratch) / "bench.sqlite3")
        with _start(db, scratch) as server:
            run(server.url, args.batches, args.batch_size)


def run(url: str, batches: int, batch_size: int) -> None:
    org = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
    experiment = org.post("/v1/experiments", json={"name": f"bench-{uuid.uuid4().hex[:8]}"}).json()["id"]
    token = org.post(f"/v1/experiments/{experiment}/ingestion-keys", json={}).json()["token"]
    ingest = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    path = f"/v1/experiments/{experiment}/metrics"
    bodies = []
    for b in range(batches):
        events = [
            {
                "name": ("train/loss", "train/accuracy", "val/loss")[i % 3],
                "value": (b * batch_size + i) * 1e-6,
                "step": (b * batch_size + i) // 3,
                "timestamp": f"2026-11-23T10:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}000Z",
                "metadata": {"split": "train", "host": f"node-{i % 4}"},
                "client_event_id": f"{b}-{i}",
            }
            for i in range(batch_size)
        ]
        bodies.append(json.dumps({"events": events}).encode())
    ingest.post(path, content=bodies[0], headers={"Content-Type": "application/json"})  # warm-up, counted out
    started = time.perf_counter()
    accepted = 0
    for body in bodies[1:]:
        response = ingest.post(path, content=body, headers={"Content-Type": "application/json"})
        response.raise_for_status()
        accepted += msgspec.json.decode(response.content)["accepted"]
    ingest_seconds = time.perf_counter() - started
    started = time.perf_counter()
    items = pages = 0
    cursor = None
    while True:
        params = {"page_size": 1000, **({"cursor": cursor} if cursor else {})}
        page = msgspec.json.decode(org.get(path, params=params).content)  # a fast decoder: time the server
        items += len(page["data"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    list_seconds = time.perf_counter() - started
    mb = sum(len(b) for b in bodies[1:]) / 1e6
    python = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {python}, {platform.system()}")
    print(f"{'operation':<34}{'items':>10}{'seconds':>10}{'per second':>14}")
    label = f"ingest (batches of {batch_size} events)"
    print(f"{label:<34}{accepted:>10}{ingest_seconds:>10.2f}{accepted / ingest_seconds:>14,.0f}")
    print(
        f"{'list metrics (pages of 1000)':<34}{items:>10}{list_seconds:>10.2f}{items / list_seconds:>14,.0f}"
    )
    print(f"(ingest bodies: {mb:.1f} MB, {pages} list pages)")


if __name__ == "__main__":
    main()
