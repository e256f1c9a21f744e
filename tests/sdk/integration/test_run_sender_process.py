"""`client.run(..., sender="process")` against the live reference server: the run's sender is a process of its
own, and what a thread sender guarantees still holds (everything stored once, in order; counts in `status()`;
the spool removed once stored; refusals raised at `flush()`: test_run_no_silent_rejection.py), with no thread of
the run's in the training process."""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tally import AsyncTally, ConfigurationError, Tally
from tally.run import spool_root

from ..conftest import unique

pytestmark = pytest.mark.integration

METRICS = 10


def log_steps(run: object, steps: range) -> None:
    for step in steps:
        run.log({f"m/{i}": step + i / 10 for i in range(METRICS)}, step=step)  # type: ignore[attr-defined]


def assert_only_the_watcher_started(before: set[threading.Thread]) -> None:
    """The run's only thread in the training process (capture and sampler off) is the one that waits for its
    sender process to end (`SenderProcess._watch`)."""
    started = sorted(thread.name for thread in set(threading.enumerate()) - before if thread.is_alive())
    assert started == ["tally-sender-watch"], f"the run's threads in the training process: {started}"


def thread_cpu_ticks(thread: threading.Thread) -> int:
    """The user and system CPU time a thread of this process has had, in clock ticks (proc(5))."""
    fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_a_process_sender_stores_every_value_once_and_the_training_process_sends_nothing(
    sync_client: Tally, tmp_path: Path
) -> None:
    before = set(threading.enumerate())
    with sync_client.run(unique("proc"), sender="process", capture=False, system_metrics_interval=0) as run:
        child = run._sender.pid  # type: ignore[union-attr]
        assert child != os.getpid()
        [watcher] = [thread for thread in threading.enumerate() if thread.name == "tally-sender-watch"]
        cpu_before = thread_cpu_ticks(watcher)
        log_steps(run, range(2000))
        run.annotate("lr drop", step=1000)
        run.config.update({"lr": 0.1})
        run.flush(timeout=60)
        status = run.status()
        assert (status.logged, status.stored, status.pending, status.rejected) == (20_002, 20_002, 0, 0)
        assert_only_the_watcher_started(before)
        assert (
            thread_cpu_ticks(watcher) == cpu_before
        )  # it waits for the child's end, and never runs meanwhile
    assert not watcher.is_alive()  # it ended with the child
    assert run._sender._process.returncode == 0  # type: ignore[union-attr]  # it ended with the run
    experiment = sync_client.experiments.get(run.id or "")
    assert experiment.status == "completed"
    assert experiment.metadata["config"] == {"lr": 0.1}
    counts = Counter((p.name, p.step) for p in sync_client.metrics.list(experiment.id, page_size=1000))
    assert len(counts) == 20_000
    assert set(counts.values()) == {1}
    [annotation] = list(sync_client.annotations.list(experiment.id))
    assert (annotation.text, annotation.step) == ("lr drop", 1000)
    assert not any((tmp_path / "spool").iterdir())  # everything stored: the spool is gone


def test_the_cap_frees_what_the_sender_process_stored(sync_client: Tally) -> None:
    """The sender process deletes stored segments; the training process's writer notices, so a spool far smaller
    than what is logged neither blocks for ever nor drops anything."""
    with sync_client.run(unique("proc-cap"), sender="process", spool_cap=1 << 17, on_full="block") as run:
        logging = threading.Thread(target=log_steps, args=(run, range(3000)), daemon=True)
        logging.start()  # about 0.8 MB through a 128 KiB spool
        logging.join(60)
        assert not logging.is_alive(), "log() still waits for room the sender process freed long ago"
        run.flush(timeout=60)
        status = run.status()
        assert (status.stored, status.dropped) == (30_000, 0)
    # About 50 roll-overs into segments written under their ready names, renamed by the sender process as it
    # read them: each value stored once, none skipped.
    counts = Counter((p.name, p.step) for p in sync_client.metrics.list(run.id or "", page_size=1000))
    assert len(counts) == 30_000
    assert set(counts.values()) == {1}


def test_closing_the_callers_client_does_not_stop_a_process_sender(
    live_server: object, tmp_path: Path
) -> None:
    client = Tally(api_key=live_server.api_key, base_url=live_server.url)  # type: ignore[attr-defined]
    run = client.run(unique("proc-own-client"), sender="process")
    log_steps(run, range(100))
    client.close()
    run.flush(timeout=30)  # its client is its own
    run.close()
    assert run.status().stored == 1000


async def test_an_async_clients_run_sends_from_a_process_too(async_client: AsyncTally) -> None:
    before = set(threading.enumerate())
    with async_client.run(
        unique("proc-async"), sender="process", capture=False, system_metrics_interval=0
    ) as run:
        # The loop the run's start ran its requests on is closed once the sender process has the run.
        assert_only_the_watcher_started(before)
        log_steps(run, range(50))
    assert run.status().stored == 500
    assert (await async_client.experiments.get(run.id or "")).status == "completed"


def test_what_cannot_cross_to_another_process_is_refused_with_the_fix(live_server: object) -> None:
    transport = httpx.HTTPTransport()
    url, key = live_server.url, live_server.api_key  # type: ignore[attr-defined]
    with (
        Tally(api_key=key, base_url=url, transport=transport) as client,
        pytest.raises(ConfigurationError, match=r"transport/http_client.*sender='thread'"),
    ):
        client.run(unique("refused"), sender="process")
    with Tally(api_key=key, base_url=url, event_hooks={"request": [lambda request: None]}) as client:
        with pytest.raises(ConfigurationError, match="event_hooks"):
            client.run(unique("refused"), sender="process")
        with pytest.raises(ValueError, match="durability='memory' keeps no spool"):
            client.run(unique("refused"), sender="process", durability="memory")
        with pytest.raises(ValueError, match="sender must be 'auto', 'thread' or 'process', not 'fork'"):
            client.run(unique("refused"), sender="fork")  # type: ignore[arg-type]
        assert list(client.experiments.list(name_prefix="refused")) == []


def test_tally_sender_sets_the_default_for_runs_that_do_not_say(
    sync_client: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLY_SENDER", "process")
    with sync_client.run(unique("env-process"), capture=False, system_metrics_interval=0) as run:
        assert run._sender.needs_client is False  # type: ignore[union-attr]  # a process of its own
        run.log({"loss": 1.0})
    with sync_client.run(unique("env-thread"), sender="thread", capture=False) as run:
        assert run._sender.needs_client is True  # type: ignore[union-attr]  # the call's own choice wins
    monkeypatch.setenv("TALLY_SENDER", "fork")
    with pytest.raises(
        ConfigurationError, match=r"TALLY_SENDER='fork': set it to 'auto', 'thread' or 'process'"
    ):
        sync_client.run(unique("env-bad"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="'auto' picks a process on Linux only")
def test_by_default_a_run_sends_from_a_process_where_one_can_send_as_its_client(
    live_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sender="auto"` (the default): a process of its own for a plain client; a thread, not an error, for a client
    whose transport or hooks cannot cross to another process, and for a run without a spool on disk."""
    monkeypatch.delenv("TALLY_SENDER", raising=False)
    url, key = live_server.url, live_server.api_key  # type: ignore[attr-defined]
    quiet = {"capture": False, "system_metrics_interval": 0}
    with Tally(api_key=key, base_url=url) as client:
        with client.run(unique("auto-plain"), **quiet) as run:  # type: ignore[arg-type]
            run.log({"loss": 1.0}, step=0)
            assert run.status().sender == "process"
        assert run.status().stored == 1
        with client.run(unique("auto-memory"), durability="memory", **quiet) as run:  # type: ignore[arg-type]
            assert run.status().sender == "thread"
        with client.run(unique("auto-said"), sender="auto", **quiet) as run:  # type: ignore[arg-type]
            assert run.status().sender == "process"
    seen: list[str] = []
    hooks = {"request": [lambda request: seen.append(request.url.path)]}
    with Tally(api_key=key, base_url=url, event_hooks=hooks) as client:
        with client.run(unique("auto-hooks"), **quiet) as run:  # type: ignore[arg-type]
            run.log({"loss": 1.0}, step=0)
            assert run.status().sender == "thread"
        assert run.status().stored == 1
        assert any(path.endswith("/metrics") for path in seen)  # sent through this client, its hooks called
    with (
        Tally(api_key=key, base_url=url, offline=True) as client,
        client.run(unique("auto-offline"), **quiet) as run,
    ):  # type: ignore[arg-type]
        assert run.status().sender is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="'auto' picks a process on Linux only")
def test_auto_sends_from_a_thread_where_python_is_embedded_in_another_program(
    sync_client: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uWSGI, Blender and the like set `sys.executable` to their own program, which `-m tally._sender_main` would
    start: "auto" takes a thread there."""
    monkeypatch.setattr(sys, "executable", "/usr/bin/uwsgi")
    with sync_client.run(unique("embedded"), capture=False, system_metrics_interval=0) as run:
        run.log({"loss": 1.0}, step=0)
        assert run.status().sender == "thread"
    assert run.status().stored == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="'auto' picks a process on Linux only")
def test_a_sender_process_that_cannot_start_leaves_auto_with_a_thread(
    sync_client: Tally, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A system that refuses another process (a container's process limit, say): "auto" sends from a thread and
    says so; an explicit `sender="process"` raises the system's error."""
    import subprocess

    def refuse(*args: object, **kwargs: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    quiet = {"capture": False, "system_metrics_interval": 0}
    with caplog.at_level("WARNING", logger="tally"):
        with sync_client.run(unique("auto-refused"), **quiet) as run:  # type: ignore[arg-type]
            run.log({"loss": 1.0}, step=0)
            assert run.status().sender == "thread"
        assert run.status().stored == 1
    assert "did not start (" in caplog.text
    spools = set(spool_root().iterdir())
    name = unique("process-refused")
    with pytest.raises(BlockingIOError):
        sync_client.run(name, sender="process", **quiet)  # type: ignore[arg-type]
    assert set(spool_root().iterdir()) == spools  # its spool, empty, went with it
    # The experiment its start created is not left running for ever, with nothing to come.
    [experiment] = [e for e in sync_client.experiments.list() if e.name == name]
    assert experiment.status == "failed"


def test_the_sender_process_tells_the_training_process_when_it_has_published(sync_client: Tally) -> None:
    """`flush()` and `close()` learn of the child's progress from a byte on a pipe, not by looking at its state
    file now and then."""
    import select

    with sync_client.run(unique("news"), sender="process", capture=False, system_metrics_interval=0) as run:
        run.log({"loss": 1.0}, step=0)
        news = run._sender._news  # type: ignore[union-attr]
        readable, _, _ = select.select([news], [], [], 60)  # (a deadline, not a speed check)
        assert readable, "the sender process published nothing in a minute"
        assert os.read(news, 4096)
        run.flush(timeout=60)
    assert run.status().stored == 1
