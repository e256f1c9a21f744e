"""A run's sender in a process of its own (`client.run(..., sender="process")`, and "auto", the default, where it
can: `_run.auto_sender`): the training process keeps only `log()`, and no thread of the run's holds its GIL
while it sends.

Why: a sender thread shares the GIL with the training loop, which then waits up to the interpreter's switch
interval (5 ms) each time it wants the GIL back (`make bench`, piece `logger_targets`: single `log()` calls of
6-18 ms). wandb sends from a process of its own for the same reason. The spool is already a directory of files
that another process can read (`tally sync` does), so the child only follows it:

- The parent starts `python -m tally._sender_main`, hands the spool's upkeep over (`SpoolWriter.hand_over`) only
  once the child has started, and then writes it one message on its stdin (`_sender_wire`): the client's
  credentials and settings (never on the command line, which every user's `ps` shows),
  the spool directory, and the leftover spools to send first. The spool's lock descriptor is inherited, so the
  child holds the spool's lock as long as it runs, even after the parent dies.
- The child runs the same `Sender` and `Drain` as a thread sender, over a store that reads the segments the parent
  writes (`_sender_child.FollowerStore`), and publishes what it has stored in `<spool>/sender.state`, which the
  parent reads when asked (`status()`, `flush()`, `close()`). It also does the spool's upkeep: it deletes the
  segments it has stored and makes the next ones ready (`_spool.prepare_ahead`), so the writer's helper thread
  stops (`SpoolWriter.hand_over`) and a roll-over in the parent maps a file and renames nothing
  (`FileStore.segments`). No thread of the run's that runs is left in the parent but those of the capture and
  the system metrics sampler, if on (the watcher, below, waits).
- Afterwards, the parent's stdin pipe is the control line: a byte `w` cuts a retry's wait short (a flush), `q`
  stops the child; end of file means that the parent is gone, and the child sends what the parent wrote (for at
  most the run's flush timeout), then exits, leaving the rest to `tally sync`.
- A child that ends unasked (killed by the out-of-memory killer, or by a person) is started again at once, up to
  `RESTARTS` times a run (`revive`): the next one goes on from the spool's progress file, where the last one
  recorded what is stored, and the server stores each event once even when a batch is sent twice. What notices
  is the run's one thread in this process, `tally-sender-watch`, blocked in `waitpid` for the child's end: it
  holds no GIL and never wakes while the child runs. (A training loop that logs once a second would otherwise
  fill its segments made ready ahead only after hours, and the run would look stalled until its next
  `status()`.)

What cannot cross to another process (`process_spec`: a `transport` or `http_client`, `event_hooks` and `hooks` are
objects of the caller's process) makes "auto" send from a thread, and `sender="process"` raise with the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tally._logging import logger

from ._sender import MAX_REASONS, Drain
from ._sender_wire import STATE_FILE, encode_message

__all__ = ["SenderProcess", "read_state"]

RESTARTS = 3
"""How many times a run starts its sender process again after it ended unasked (`SenderProcess.revive`). A child
that cannot run at all (it dies at its start each time) then leaves the rest to `tally sync`, said once."""

STOP_TIMEOUT = 2.0
"""Seconds `stop()` waits for the child to end after `q` (it may be inside a request), before killing it, so that
the spool's lock is free for `tally sync`."""


def read_state(directory: Path) -> dict[str, Any] | None:
    """The child's last published state, or None before its first."""
    try:
        state: dict[str, Any] = json.loads((directory / STATE_FILE).read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return state


PACKAGES = ("tally", "tally_api", "tally_api_types")
"""What the child imports, from where this process imported them."""


def _package_roots() -> list[str]:
    roots = []
    for name in PACKAGES:
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None)
        if location:
            roots.append(str(Path(location).resolve().parent.parent))
    return roots


def _site_dirs() -> set[str]:
    import site

    dirs: list[str] = []
    # (Both are missing from the `site` module of some virtualenvs of old.)
    for lister in (getattr(site, "getsitepackages", None), getattr(site, "getusersitepackages", None)):
        if lister is not None:
            found = lister()
            dirs.extend([found] if isinstance(found, str) else found)
    return {str(Path(path).resolve()) for path in dirs}


def child_environment(environ: Mapping[str, str], roots: list[str], site_dirs: set[str]) -> dict[str, str]:
    """The child's environment: this process's, with `PYTHONPATH` led by the folders this process imported Tally
    from when a fresh interpreter would not look there (a folder added to `sys.path` at run time, or a script's
    own folder): the child imports the same Tally, or none. Site folders are left out: put first, they would come
    before the standard library. (multiprocessing's spawn passes a child its parent's `sys.path` for the same
    reason.)"""
    env = dict(environ)
    extra = [root for root in dict.fromkeys(roots) if root not in site_dirs]
    if extra:
        env["PYTHONPATH"] = os.pathsep.join([*extra, *filter(None, [environ.get("PYTHONPATH")])])
    return env


class SenderProcess:
    """The parent's side: starts the child, reads its state into the run's `drain` (which this process never
    steps: it only holds the counts `Run.status()` reads), and offers what a `Sender` offers the run (`wait`,
    `stop`, `wake`, `last_error`)."""

    needs_client = False
    """The child sends through a client of its own: closing the caller's client does not stop it."""

    def __init__(
        self,
        drain: Drain,
        directory: Path,
        *,
        spec: dict[str, Any],
        lock_fd: int,
        leftovers: list[Path],
        fsync_interval: float | None,
        grace: float,
        segment_start: bytes,
        segment_bytes: int,
    ) -> None:
        self.drain = drain
        self.directory = directory
        self.last_error: str | None = None
        self.restarts = 0
        """How many times the child was started again (`revive`)."""
        self._death: str | None = None  # why the child ended unasked, said once and kept
        self._stopping = False  # (asked to stop: its end is not news)
        # (`revive` is called from the watcher's thread, and from any thread that asks for the run's status, or
        # waits for the sender to free the spool.)
        self._reviving = threading.Lock()
        # What children that died had said of their refusals (`_read_state`).
        self._earlier_reasons: list[tuple[int, str]] = []
        # Children that ended, and their news pipes: closed at `stop` (`revive` says why).
        self._ended: list[tuple[subprocess.Popen[bytes], int]] = []
        self._parent = os.getpid()
        self._spec = spec
        self._lock_fd = lock_fd
        self._leftovers = leftovers
        self._settings = {
            "directory": str(directory),
            "fsync_interval": fsync_interval,
            "grace": grace,
            "segment_start": segment_start,
            "segment_bytes": segment_bytes,
        }
        self._spawn()

    def _spawn(self) -> None:
        """Start a child, which waits for its instructions (`start`), and its watcher (`_watch`)."""
        # The child writes a byte here each time it publishes its state, so that `wait` learns at once instead of
        # at its next look (it looked every 2 ms at first, backing off to 50 ms: 15-32 ms of every `close()`).
        self._news, news = os.pipe()
        os.set_blocking(self._news, False)
        self._message = encode_message(
            {
                **self._settings,
                "experiment_id": self.drain.experiment_id,
                "leftovers": [str(path) for path in self._leftovers if path.exists()],
                "news_fd": news,
            },
            self._spec,
        )
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tally._sender_main"],
                stdin=subprocess.PIPE,
                pass_fds=(self._lock_fd, news),
                close_fds=True,
                env=child_environment(os.environ, _package_roots(), _site_dirs()),
            )
        except BaseException:
            os.close(self._news)
            self._news = -1
            raise
        finally:
            os.close(news)  # (the child's end)
        assert self._process.stdin is not None
        self._control = self._process.stdin.fileno()
        self._watcher = threading.Thread(
            target=self._watch, args=(self._process,), name="tally-sender-watch", daemon=True
        )
        self._watcher.start()

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for the child to end (a blocking `waitpid`, which lets go of the GIL); then, unless asked, start
        another or say why not (`refresh`)."""
        process.wait()
        if not self._stopping:
            self.refresh()

    @property
    def pid(self) -> int:
        return self._process.pid

    def revive(self) -> bool:
        """True while a child runs. One that ended unasked before the run's end is started again first, at most
        `RESTARTS` times a run: what it had not stored is still in the spool, and the next child goes on from the
        spool's progress file. (Called by the watcher when the child ends, by `refresh`, and by the writer,
        which waits for the sender on a full disk or at the cap only while this is True: `SpoolWriter.hand_over`.)"""
        if self._process.poll() is None:
            return True
        with self._reviving:
            code = self._process.poll()
            if code is None:
                return True  # (started again by another thread meanwhile)
            if self._stopping or self.drain.finished or self.restarts >= RESTARTS:
                return False
            if os.getpid() != self._parent:
                # A fork of the training process (a DataLoader's worker, say): the child is not its own, and
                # `poll()` there says that it has ended. Only the process that started it starts another.
                return False
            self._read_state()  # the last it published: its refusals' reasons are kept
            if self.drain.finished:
                return False
            self._earlier_reasons = list(self.drain.reasons)
            # (Read again before the next child publishes, its reasons would count twice.)
            (self.directory / STATE_FILE).unlink(missing_ok=True)
            # Its pipes stay open until `stop`: another thread may be about to use their numbers (`_send`,
            # `_await_news`), which, closed now, anything of this process's could be given meanwhile.
            self._ended.append((self._process, self._news))
            try:
                self._spawn()
            except OSError as error:
                logger.warning("tally: the run's sender process could not be started again: %s", error)
                return False
            self.restarts += 1
            self.start()
            logger.warning(
                "tally: the run's sender process ended (exit code %s); started another (%d of at most %d a run), "
                "which goes on from what the spool records as stored",
                code,
                self.restarts,
                RESTARTS,
            )
            return True

    def start(self) -> None:
        """Give the child its instructions: until then it waits (started by the constructor, so that a run whose
        child cannot start still has its writer's helper: `start_run`)."""
        os.write(self._control, self._message)
        os.set_blocking(self._control, False)

    def _send(self, byte: bytes) -> None:
        """A control byte, never waiting: a full pipe already holds a wake-up, and a dead child is seen by
        `refresh`."""
        with contextlib.suppress(OSError):
            os.write(self._control, byte)

    def wake(self) -> None:
        self._send(b"w")

    def _read_state(self) -> None:
        """Copy the child's last published state into the run's drain."""
        state = read_state(self.directory)
        drain = self.drain
        if state is None:
            return
        if state["experiment_id"] is not None:
            drain.experiment_id = state["experiment_id"]
        drain.stored = state["stored"]
        drain.rejected = state["rejected"]
        drain.duplicates = state["duplicates"]
        reasons = [(before, reason) for before, reason in state["reasons"]]
        drain.reasons = (self._earlier_reasons + reasons)[:MAX_REASONS]
        drain.last_error = state["last_error"]
        drain.blocked = state["blocked"]
        drain.finished = state["finished"]
        drain.done_seq = state["done_seq"]
        self.last_error = state["sender_error"]

    def refresh(self) -> None:
        """Copy the child's last published state into the run's drain; start it again if it has died (`revive`),
        or say so when it may not be."""
        self._read_state()
        if self._process.poll() is not None and self._death is None and not self.revive():
            with self._reviving:  # (the watcher's thread and the caller's may both get here: said once)
                code = self._process.returncode
                said = self._death is not None or self.drain.finished or self._stopping
                if not said and os.getpid() == self._parent:  # (a fork's child is not its own: `revive`)
                    self._death = (
                        f"the run's sender process ended (exit code {code})"
                        + (f", after {self.restarts} restarts" if self.restarts else "")
                        + f"; what it did not send stays in the spool {self.directory}: `tally sync` uploads it"
                    )
                    logger.warning("tally: %s", self._death)
        if self._death is not None:
            self.last_error = self._death

    def wait(self, caught_up: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until `caught_up()` (after a `refresh`) or `timeout` seconds; True when caught up. Looks again
        each time the child says it has published (`_await_news`), and at least every 2 ms at first, backing off
        to 50 ms."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.wake()
        pause = 0.002
        while True:
            self.refresh()
            if caught_up():
                return True
            if self._process.poll() is not None:
                self.refresh()  # its last state, published before it ended; and another child, if it may
                if self._process.poll() is not None:
                    return caught_up()
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._await_news(pause if remaining is None else min(pause, remaining))
            pause = min(pause * 2, 0.05)

    def _await_news(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the child to publish its state (a byte on the news pipe). The pipe
        is closed and replaced only with its child (`revive`, `stop`), so here it may be gone or at its end:
        then only the time passes."""
        news = self._news
        if news >= 0:
            try:
                readable, _, _ = select.select([news], [], [], timeout)
                if not readable or os.read(news, 4096):
                    return  # news, or the time is up
            except BlockingIOError:
                return  # (the byte was taken by another waiter)
            except (OSError, ValueError):
                pass  # closed meanwhile
        time.sleep(timeout)  # the child has ended (its end of the pipe is closed), or is being replaced

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Tell the child to stop, wait `timeout` seconds for it, then kill it (so that its lock on the spool
        is released); True if it ended by itself."""
        with self._reviving:  # (a child being started again now gets the `q` too)
            self._stopping = True
        self._send(b"q")
        # Its watcher reaps it: joined, it says so at once (`Popen.wait` with a timeout would look every 50 ms).
        self._watcher.join(timeout)
        ended = not self._watcher.is_alive()
        if not ended:
            self._process.kill()
            self._process.wait()
        self._close_pipes()
        self.refresh()
        return ended

    def _close_pipes(self) -> None:
        for process, news in [*self._ended, (self._process, self._news)]:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            if news >= 0:
                os.close(news)
        self._ended.clear()
        self._news = -1
