"""The run's guarantees with real processes killed: the training process SIGKILLed at random moments, the server
SIGKILLed and restarted mid-run, the server down for the whole run, answers dropped after the server committed,
and the exit of a process that never closed its run. Each ends with: every value logged is stored exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tally import Tally
from tally._sync._run_port import RunPort
from tally.run import spool_status, sync_spools

from ..conftest import unique
from .conftest import KEY, ServerProcess, training_env

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("training_script.py")
METRICS = 10


def client_for(url: str) -> Tally:
    return Tally(api_key=KEY, base_url=url)


def log_steps(run: object, steps: range, pause: float = 0.0) -> None:
    for step in steps:
        run.log({f"m/{i}": step + i / 10 for i in range(METRICS)}, step=step)  # type: ignore[attr-defined]
        if pause and step % 10 == 9:
            time.sleep(pause)


def assert_stored_once(client: Tally, experiment_id: str, steps: int) -> None:
    """Every metric at every step 0..steps-1 stored exactly once, nothing else."""
    counts = Counter((p.name, p.step) for p in client.metrics.list(experiment_id, page_size=1000))
    duplicates = {key: n for key, n in counts.items() if n != 1}
    assert not duplicates, f"stored more than once: {list(duplicates.items())[:5]}"
    expected = {(f"m/{i}", step) for i in range(METRICS) for step in range(steps)}
    missing = expected - set(counts)
    assert not missing, f"{len(missing)} values lost, e.g. {sorted(missing)[:5]}"
    assert set(counts) == expected


# ---- the training process killed ---------------------------------------------------------------------------------
def kill_training_at_random(
    server: ServerProcess, tmp_path: Path, name: str, seed: int, *, sender: str
) -> tuple[str, int]:
    """Start `training_script.py` logging to `server` with the given `sender`, SIGKILL it at a random moment once
    it logs, and return its experiment id and how many steps had returned from `log()`."""
    marker = tmp_path / "marker"
    env = training_env(tmp_path, server.url)
    with (tmp_path / "training.log").open("wb") as log:
        training = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(marker), "1000000", name, "close", sender],
            env=env,
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_bytes().count(b"\n") > 1):
        assert training.poll() is None, (tmp_path / "training.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.05, 1.0))
    training.send_signal(signal.SIGKILL)
    training.wait(30)
    lines = marker.read_text().splitlines()
    experiment_id, returned = lines[0], len(lines) - 1  # steps 0..returned-1 had returned from log()
    assert experiment_id.startswith("exp_")
    return experiment_id, returned


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_training_process_sigkilled_at_a_random_moment_then_tally_sync(
    server: ServerProcess, tmp_path: Path, seed: int
) -> None:
    server.start()
    name = unique(f"killed-{seed}")
    experiment_id, returned = kill_training_at_random(server, tmp_path, name, seed, sender="thread")
    with client_for(server.url) as client:
        reports = sync_spools(RunPort(client, owned=False), tmp_path / "spool")
        assert [r.state for r in reports] == ["synced"]
        assert reports[0].experiment_id == experiment_id
        stored_steps = {p.step for p in client.metrics.list(experiment_id, name="m/0", page_size=1000)}
        # The kill may land between log() returning and the marker's write: one step more is allowed.
        assert len(stored_steps) in (returned, returned + 1)
        assert_stored_once(client, experiment_id, len(stored_steps))
        assert len(list(client.experiments.list(name_prefix=name))) == 1
    assert spool_status(tmp_path / "spool") == []


def test_a_process_that_exits_without_closing_its_run_flushes_then_says_what_is_left(
    tmp_path: Path, server: ServerProcess
) -> None:
    marker = tmp_path / "marker"
    env = training_env(tmp_path, server.url) | {"TALLY_FLUSH_TIMEOUT": "1"}
    name = unique("exit")
    # The server is down for the whole run: nothing can be stored before the exit.
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(marker), "200", name, "leave"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("tally:")]
    assert len(lines) == 1, done.stderr
    assert "2,000 events" in lines[0]
    assert "tally sync" in lines[0]
    [pending] = spool_status(tmp_path / "spool")
    assert pending.pending == 2000
    # Then the server comes up, and `tally sync` stores everything, creating the experiment once.
    server.start()
    with client_for(server.url) as client:
        [report] = sync_spools(RunPort(client, owned=False), tmp_path / "spool")
        assert (report.state, report.stored) == ("synced", 2000)
        [experiment] = list(client.experiments.list(name_prefix=name))
        assert experiment.status == "completed"
        assert_stored_once(client, experiment.id, 200)


# ---- the server killed, down, or losing its answers -----------------------------------------------------------------
def test_server_sigkilled_and_restarted_mid_run(server: ServerProcess) -> None:
    server.start()
    with client_for(server.url) as client:
        with client.run(unique("server-killed"), flush_timeout=120) as run:
            log_steps(run, range(300), pause=0.002)
            server.kill()
            log_steps(run, range(300, 600), pause=0.002)
            assert run.status().pending > 0
            server.start()
            log_steps(run, range(600, 900), pause=0.002)
            run.flush(timeout=120)
            status = run.status()
        assert (status.logged, status.stored, status.pending, status.rejected) == (9000, 9000, 0, 0)
        assert_stored_once(client, run.id or "", 900)
        assert client.experiments.get(run.id or "").status == "completed"


def test_server_down_for_the_whole_run_then_up(server: ServerProcess, tmp_path: Path) -> None:
    name = unique("server-down")
    with client_for(server.url) as client:
        with client.run(name, flush_timeout=0.2) as run:  # the server is not started: run() still works
            assert run.id is None
            log_steps(run, range(500))
            run.annotate("no server yet", step=250)
        assert run.status().pending == 5001
        server.start()
        [report] = sync_spools(RunPort(client, owned=False), tmp_path / "spool")
        assert (report.state, report.stored, report.rejected) == ("synced", 5001, 0)
        [experiment] = list(client.experiments.list(name_prefix=name))
        assert experiment.status == "completed"
        assert_stored_once(client, experiment.id, 500)
        assert len(list(client.annotations.list(experiment.id))) == 1


class DroppingProxy:
    """A TCP proxy that forwards every request to the server, then, on some connections, swallows the answer
    and cuts the connection: the server has committed, the client never hears it."""

    def __init__(self, upstream_port: int, *, seed: int, drops: int) -> None:
        self.upstream_port = upstream_port
        self.random = random.Random(seed)
        self.remaining = drops
        self.dropped = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        drop = self.remaining > 0 and self.random.random() < 0.5

        async def upstream() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    up_writer.write(data)
                    await up_writer.drain()

        async def downstream() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await up_reader.read(65536):
                    if drop and self.remaining > 0:
                        self.remaining -= 1
                        self.dropped += 1
                        return  # the server answered (so it committed); the client gets a cut connection
                    writer.write(data)
                    await writer.drain()

        forward = asyncio.ensure_future(upstream())
        try:
            await downstream()
        finally:
            forward.cancel()
            with contextlib.suppress(BaseException):
                await forward
            for stream in (writer, up_writer):
                stream.close()
                with contextlib.suppress(BaseException):
                    await stream.wait_closed()


def test_answers_dropped_after_the_server_committed(server: ServerProcess) -> None:
    server.start()
    with (
        DroppingProxy(server.port, seed=7, drops=8) as proxy,
        client_for(f"http://127.0.0.1:{proxy.port}") as client,
    ):
        with client.run(unique("dropped"), flush_timeout=120) as run:
            for chunk in range(8):
                log_steps(run, range(chunk * 250, (chunk + 1) * 250))
                run.flush(timeout=120)  # one batch at a time, so that many requests meet the proxy
            status = run.status()
        assert (status.logged, status.stored, status.pending) == (20_000, 20_000, 0)
        assert proxy.dropped > 0
    with client_for(server.url) as direct:
        assert_stored_once(direct, run.id or "", 2000)
