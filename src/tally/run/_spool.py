"""Where a run's records live: a directory of segment files (or memory), the writer that appends to it, the lock
that keeps one sender per spool, and the readers the sender and `tally sync` use. The format is in `_format`.

Layout of one run's spool, under the spool root (`TALLY_SPOOL_DIR`, else the platform's user data directory)::

    <root>/<run>/00000001.seg, 00000002.seg, ...   records, appended by the training process only
    <root>/<run>/progress                           what is stored, appended by the sender only
    <root>/<run>/lock                               flock()ed by whichever process owns the spool

where `<run>` is `<start time, 8 hex digits of Unix seconds>-<run_key>`, so that spools sort by age.

Directories are created 0700 and files 0600: metric names and metadata are the user's data. Each segment starts
with the run's header record, so dropping the oldest segment at the size cap never loses the header.

A full disk is the same as the size cap, never a signal: a segment's space is reserved (`posix_fallocate`) before
it is written through its memory map (a write to a mapped page the file system cannot back kills the process with
SIGBUS), and a reservation the disk refuses is handled by the run's `on_full` policy: "block" waits for the sender
to free older segments, "drop_oldest" drops them, and with nothing to free (or offline, under "block")
`SpoolFullError` names the directory and what to do. The lock is
an advisory `fcntl.flock`, which the kernel releases when its process dies, so a SIGKILLed run's spool is free for
`tally sync` at once (on platforms without `fcntl` there is no lock).

Off the caller's path: creating a segment (open, `posix_fallocate` of its reservation, `mmap`: about 3 ms for 8 MiB
on ext4) and closing the full one (`munmap`, `ftruncate`: about 0.5 ms) are done by the writer's helper thread
(`_Helper`), so a roll-over on the training thread is a `rename` and a swap. The next segment waits under a name
that is not a segment's (`<number>.next`), because a reader takes the existence of a later segment to mean that
the current one gets no more writes; a crash leaves at most that file, which holds only the header and is ignored.

With a sender process (`_sender_process`), that process makes the next segments ready, and the training process
writes into one under its ready name, with no rename at all (a rename is a journalled change of the directory:
1-8 ms now and then while another process commits on the same file system). A `<number>.next` that holds a record
is then a segment: every reader (`FileStore.segments`: the sender process, `tally sync`, the status) renames those
it finds started, in order. They always follow the newest segment, since a writer that makes a segment itself
first names those it wrote (`FileStore.create`), and a full disk gives back only ready files after the one being
written (`drop_spare`). A name is given by a hard link, never a rename over a segment (`_name_segment` says why).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from tally._logging import logger
from tally._run_defaults import DEFAULT_CAP_BYTES

from ._format import HEADER, MAGIC, decode_records, frame, last_progress, run_header

try:  # pragma: no cover - platform dependent
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_CAP_BYTES",
    "SPOOL_DIR_ENV",
    "CapPolicy",
    "FileStore",
    "MemoryStore",
    "SpoolFullError",
    "SpoolLock",
    "SpoolWriter",
    "Store",
    "iter_spools",
    "make_private_dir",
    "spool_root",
]

SPOOL_DIR_ENV = "TALLY_SPOOL_DIR"
DEFAULT_SEGMENT_BYTES = 1 << 19
"""Segments are mapped into memory while written, and their disk space reserved when they are created: their size
bounds the resident memory and the space reserved ahead of the writes. 512 KiB rather than 1 MiB: half a MiB less
of the training process's peak RSS (issue 21's 8 MiB target), for a roll-over (a rename and a swap on the training
thread) every ~36,000 values instead of ~72,000."""
MIN_RESERVE = 64 << 10
"""On a disk too full for a whole segment, a reservation is halved down to this (or to what must fit)."""
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
"""The errors of a full disk (or quota)."""
_NOT_SUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS})
LATE_BACKOFF = 1.0
"""Seconds the helper makes no spare segment after one came too late (the writer had made its segment itself).
A loop that fills a segment faster than the helper gets the GIL (at `make bench`'s pace, a 512 KiB segment every
~5 ms, the interpreter's switch interval) is better off making its segments itself than having the helper fight
it for the GIL at every roll-over (offline, 1,000,000 calls: 218-442 calls over 1 ms with a helper that always
tried, 8-18 with this pause; 2026-12-04); a slower loop gets its spares made again a second later."""
SEGMENT_SUFFIX = ".seg"
SPARE_SUFFIX = ".next"
"""The segment made ready ahead of the roll-over: not a segment until renamed (see the module's docstring)."""

CapPolicy = Literal["block", "drop_oldest"]


class SpoolFullError(RuntimeError):
    """The spool cannot take the record: its size cap or its disk is full, and the `on_full` policy has nothing to
    free (offline under "block", or no older segment to wait for or drop). Nothing of the record is written."""


def _allocate(fd: int, size: int) -> None:
    """Give the file `size` bytes of disk blocks (and at least that length), or raise the disk's OSError."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except OSError as error:
            if error.errno not in _NOT_SUPPORTED:
                raise
    # No fallocate here: write zeros over what the file lacks, which allocates the blocks just as surely.
    start = os.fstat(fd).st_size
    zeros = bytes(min(1 << 20, max(size - start, 0)))
    while start < size:
        start += os.pwrite(fd, zeros[: size - start], start)


def _pages(size: int) -> int:
    return -(-size // mmap.PAGESIZE) * mmap.PAGESIZE


def _reserve(fd: int, want: int, need: int) -> int:
    """Reserve `want` bytes, halving on a full disk down to `need`; the bytes reserved, or the disk's OSError."""
    size = _pages(want)
    floor = _pages(need)
    while True:
        try:
            _allocate(fd, size)
            return size
        except OSError as error:
            if error.errno not in NO_SPACE or size <= floor:
                raise
            size = max(floor, _pages(size // 2))


def spool_root(env: Mapping[str, str] | None = None) -> Path:
    """`TALLY_SPOOL_DIR`, else `<user data dir>/tally/spool`."""
    env = os.environ if env is None else env
    configured = env.get(SPOOL_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return platformdirs.user_data_path("tally") / "spool"


def make_private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) with mode 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


# ---- storage: files, or memory for durability="memory" ---------------------------------------------------------
class Store(Protocol):
    """Segments by number: what the writer appends to and the sender reads."""

    location: str | None

    def segments(self) -> list[int]: ...
    def create(self, number: int, data: bytes, reserve: int) -> int: ...
    def append(self, data: bytes) -> None: ...
    def read(self, number: int, offset: int, size: int) -> bytes | None: ...
    def delete(self, number: int) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class FileStore:
    """Segments as files in a run's spool directory. The newest segment is written through a shared memory map:
    `append` is a copy into the kernel's page cache, which outlives a killed process exactly as `os.write` does,
    but without a system call that lets go of the GIL. (Measured with a busy second thread, such as the sender:
    `os.write` 7.2 µs a step on average, p99.9 32 µs; the map 2.5 µs, p99.9 7.6 µs.) Every mapped byte has its
    disk space reserved first, so a write through the map never meets a full disk (that would be SIGBUS); the
    unwritten rest reads as zeros, which the format takes as the end of the data, and closing the segment cuts the
    file to its used length."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.location: str | None = str(directory)
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._used = 0
        self._ready_lock = threading.Lock()
        self._spare: tuple[int, int, mmap.mmap, int] | None = None  # (number, fd, map, reserved), made ahead
        # (fd, map or None once unmapped, used): full segments left to close
        self._retired: list[tuple[int, mmap.mmap | None, int]] = []
        self.deferred = False  # True while a helper thread prepares and retires segments (`SpoolWriter`)
        self._prepare_after = 0.0  # (monotonic) no spare is made before then: see `LATE_BACKOFF`
        self.prepared_elsewhere = False
        """True when a sender process makes the next segments ready as `<n>.next` files (`_sender_child`):
        a roll-over then maps one (`_adopt`) instead of creating a file, and writes into it under that name (see
        `segments`); a full segment is unmapped but not cut to its length (that process deletes it once stored;
        the rest of a segment reads as zeros)."""
        # The segment being written: (number, still under its ready name); None in a store that only reads.
        self._current: tuple[int, bool] | None = None

    def path(self, number: int) -> Path:
        return self.directory / f"{number:08d}{SEGMENT_SUFFIX}"

    def _spare_path(self, number: int) -> Path:
        return self.directory / f"{number:08d}{SPARE_SUFFIX}"

    def _open_segment(self, path: Path, data: bytes, reserve: int) -> tuple[int, mmap.mmap, int]:
        """A new file at `path` with its space reserved and mapped; removed again on any error."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            need = max(len(data), min(reserve, MIN_RESERVE))
            # At most half of the free space: the progress and dead-letter files (and the disk's other users)
            # keep room, and on a small disk the next segment still fits once the sender frees this one.
            free = os.fstatvfs(fd)
            want = min(max(reserve, len(data)), max(need, free.f_bavail * free.f_frsize // 2))
            size = _reserve(fd, want, need)
            view = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return fd, view, size

    def prepare(self, number: int, data: bytes, reserve: int) -> None:
        """Make segment `number` ready ahead of the roll-over (on the helper thread): created, reserved, mapped
        and starting with `data`, under its spare name. Nothing on a full disk (the roll-over then makes it
        itself, with the `on_full` policy)."""
        with self._ready_lock:
            stale = self._spare
            if stale is not None and stale[0] == number:
                return
            self._spare = None
        if time.monotonic() < self._prepare_after:
            if stale is not None:
                self._discard(stale)
            return  # too late lately: see `LATE_BACKOFF`
        if stale is not None:
            # Made for a segment the writer has since made itself. Kept, it would also stop every later spare from
            # being made: until 2026-12-04, one late spare left every roll-over after it creating its segment on the
            # training thread (0.65 ms median, 16 ms p99 on this machine's disk).
            self._discard(stale)
        path = self._spare_path(number)
        path.unlink(missing_ok=True)  # a crashed process's spare (never a segment)
        try:
            fd, view, size = self._open_segment(path, data, reserve)
        except OSError as error:
            if error.errno not in NO_SPACE:
                logger.debug("tally: preparing spool segment %d failed: %s", number, error)
            return
        view[: len(data)] = data
        with self._ready_lock:
            self._spare = (number, fd, view, size)

    def drop_spare(self) -> bool:
        """Give back the disk space of the segments made ahead (on a full disk, and at the end): this process's
        spare, or those a sender process made ready; False if none."""
        with self._ready_lock:
            spare, self._spare = self._spare, None
        dropped = spare is not None
        if spare is not None:
            self._discard(spare)
        if self.prepared_elsewhere:
            written = self._current[0] if self._current is not None else 0
            with contextlib.suppress(FileNotFoundError):
                # Only those after the one being written: the ones before it hold records (`create`).
                for number in _numbered(os.listdir(self.directory), SPARE_SUFFIX):
                    if number > written:
                        with contextlib.suppress(FileNotFoundError):
                            self._spare_path(number).unlink()
                            dropped = True
        return dropped

    def _discard(self, spare: tuple[int, int, mmap.mmap, int]) -> None:
        number, fd, view, _ = spare
        view.close()
        os.close(fd)
        self._spare_path(number).unlink(missing_ok=True)

    def retire(self) -> None:
        """Close the segments the writer has finished: unmap them and cut them to their used length."""
        while True:
            with self._ready_lock:
                if not self._retired:
                    return
                fd, view, used = self._retired.pop(0)
            _close_segment(fd, view, used)

    def segments(self) -> list[int]:
        """The segments, oldest first. A writer in another process writes into a segment made ready for it while it
        still has its ready name (`create`): those it has started, which always follow the newest segment, are
        renamed here, in order, by whoever lists first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        numbers = _numbered(names, SEGMENT_SUFFIX)
        if self._current is not None and not self.prepared_elsewhere:
            return numbers  # this process's writer renames its segments before it writes them (`create`)
        ready = _numbered(names, SPARE_SUFFIX)
        # After the newest segment; or, when the sender has deleted them all, the oldest ready one written.
        following = (
            numbers[-1] + 1 if numbers else next((n for n in ready if _started(self._spare_path(n))), 0)
        )
        while following in ready and _started(self._spare_path(following)):
            if not _name_segment(self._spare_path(following), self.path(following)):
                break
            numbers.append(following)
            following += 1
        return numbers

    def create(self, number: int, data: bytes, reserve: int) -> int:
        """Start segment `number` with `data`, reserving `reserve` bytes of disk for it (less when the disk is
        short, down to a minimum); returns the bytes reserved. Raises the disk's OSError when even the minimum
        does not fit: the segment being written then stays the current one."""
        path = self.path(number)
        with self._ready_lock:
            spare, self._spare = self._spare, None
        if spare is not None and spare[0] != number:
            self._discard(spare)  # made too late, for a segment the writer has made itself meanwhile
            spare = None
            self._prepare_after = time.monotonic() + LATE_BACKOFF
        if spare is None and self.prepared_elsewhere:
            adopted = self._adopt(number, data)
            if adopted is not None:
                # Written under its ready name: the sender process renames it once it sees it started
                # (`segments`). A rename is a journalled change of the directory, which took 1-8 ms now and then
                # on the training thread while another process committed on the same file system (2026-12-04).
                _, fd, view, size = adopted
                self._swap(fd, view, len(data))
                self._current = (number, True)
                return size
            # Made here: every segment before it must have its segment name first, since those written under
            # their ready name always follow the newest one (`segments`).
            self.segments()
            self._name_current()
        if spare is not None:  # made ahead by the helper: a rename, not a creation
            _, fd, view, size = spare
            try:
                os.rename(self._spare_path(number), path)
            except OSError:
                view.close()
                os.close(fd)
                self._spare_path(number).unlink(missing_ok=True)
                spare = None
            else:
                self._swap(fd, view, len(data))
                self._current = (number, False)
                return size
        fd, view, size = self._open_segment(path, data, reserve)
        self._swap(fd, view, 0)
        self._current = (number, False)
        self.append(data)
        return size

    def _name_current(self) -> None:
        """Give the segment being written, if it still has its ready name, its segment name."""
        if self._current is not None and self._current[1]:
            number = self._current[0]
            _name_segment(self._spare_path(number), self.path(number))
            self._current = (number, False)

    def _adopt(self, number: int, data: bytes) -> tuple[int, int, mmap.mmap, int] | None:
        """Segment `number` as a sender process made it ready (`<n>.next`, starting with `data`), mapped; None
        when there is none (or it is not what this writer would write)."""
        try:
            fd = os.open(self._spare_path(number), os.O_RDWR)
        except OSError:
            return None
        try:
            size = os.fstat(fd).st_size
            if size <= len(data):
                raise ValueError("too small")
            view = mmap.mmap(fd, size)
            if view[: len(data)] != data:
                view.close()
                raise ValueError("another header")
        except (OSError, ValueError) as error:
            logger.debug("tally: spool segment %d made ready elsewhere is not used: %s", number, error)
            os.close(fd)
            return None
        return number, fd, view, size

    def _swap(self, fd: int, view: mmap.mmap, used: int) -> None:
        """Make the new segment the current one; the full one is closed by the helper when there is one."""
        if self._map is not None and self._fd is not None:
            if self.deferred:
                with self._ready_lock:
                    # A segment the helper has not closed yet stays resident while mapped: unmap it here (22 us
                    # median, 100 us p99 for 512 KiB on this machine) and leave the cutting (ftruncate, a
                    # journalled change with millisecond tails) to the helper. So a helper short of the GIL or a
                    # CPU never leaves more than one full segment mapped: in a `make bench` outage run on
                    # 2026-12-04 one lagged until 37.5 MB of them were resident (1-2 MB in other runs).
                    for index, (old_fd, old_view, old_used) in enumerate(self._retired):
                        if old_view is not None:
                            old_view.close()
                            self._retired[index] = (old_fd, None, old_used)
                    self._retired.append((self._fd, self._map, self._used))
            elif self.prepared_elsewhere:
                self._map.close()  # not cut to length: see `prepared_elsewhere`
                os.close(self._fd)
            else:
                _close_segment(self._fd, self._map, self._used)
        self._fd, self._map, self._used = fd, view, used

    def append(self, data: bytes) -> None:
        """Copy `data` after the last record; a record larger than what is reserved first reserves more (the
        disk's OSError, before anything is written, when it cannot)."""
        view = self._map
        assert view is not None
        start = self._used
        end = start + len(data)
        if end > len(view):
            assert self._fd is not None
            size = _pages(end)
            try:
                _allocate(self._fd, size)
            except OSError:
                os.ftruncate(self._fd, len(view))  # give back what a partial reservation took
                raise
            view.resize(size)
        view[start:end] = data
        self._used = end

    def read(self, number: int, offset: int, size: int) -> bytes | None:
        """Up to `size` bytes of a segment from `offset`; None when the segment is gone."""
        try:
            fd = os.open(self.path(number), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    def delete(self, number: int) -> None:
        try:
            self.path(number).unlink()
        except FileNotFoundError:  # written, but not renamed yet (`segments`)
            with contextlib.suppress(FileNotFoundError):
                self._spare_path(number).unlink()

    def sync(self) -> None:
        view = self._map
        if view is not None:
            with contextlib.suppress(ValueError):  # closed meanwhile by the writer
                view.flush()

    def close(self) -> None:
        self.retire()
        self.drop_spare()
        if self._map is not None and self._fd is not None:
            _close_segment(self._fd, self._map, self._used)
        self._map = None
        self._fd = None


def _numbered(names: list[str], suffix: str) -> list[int]:
    """The numbers of the files in `names` called `<number><suffix>` (segments, or ready ones), in order."""
    return sorted(
        int(digits) for name in names if name.endswith(suffix) and (digits := name[: -len(suffix)]).isdigit()
    )


def _name_segment(ready: Path, segment: Path) -> bool:
    """Give a segment written under its ready name (`ready`) its segment name, unless a segment has that name
    already; True when `segment` exists afterwards. Never a rename over it: once a lister has renamed a segment, a
    sender process may make a ready file again under that number (its listing was older), which a rename would
    put in place of the segment's records (found by `test_run_spool`, 2026-12-04). So a hard link, which fails
    when the name is taken, then the ready name removed; a plain rename, after a look, where the file system has
    no hard links."""
    try:
        os.link(ready, segment)
    except FileExistsError:
        return True
    except FileNotFoundError:
        return segment.exists()
    except OSError as error:
        if error.errno not in _NO_LINKS:
            raise
        if segment.exists():
            return True
        try:
            os.rename(ready, segment)
        except FileNotFoundError:
            return segment.exists()
        return True
    with contextlib.suppress(FileNotFoundError):
        os.unlink(ready)
    return True


_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV})
"""The errors of a file system that keeps no second name for a file."""


def _started(path: Path) -> bool:
    """Whether a writer has begun to write a record into the segment at `path` (made ready under that name): the
    bytes after its start (the magic and the run's header) are not all zeros. Read while the writer may be copying
    the record: a "no" is only "not yet", since bytes become non-zero only when written."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        head = os.pread(fd, len(MAGIC) + HEADER.size, 0)
        if len(head) < len(MAGIC) + HEADER.size:
            return False
        (length, _) = HEADER.unpack_from(head, len(MAGIC))
        first = os.pread(fd, HEADER.size, len(MAGIC) + HEADER.size + length)
    finally:
        os.close(fd)
    return any(first)


def _close_segment(fd: int, view: mmap.mmap | None, used: int) -> None:
    if view is not None:
        view.close()
    os.ftruncate(fd, used)
    os.close(fd)


class MemoryStore:
    """Segments in memory (durability="memory": no spool on disk; a dead process loses what was not sent)."""

    def __init__(self) -> None:
        self.location: str | None = None
        self._segments: dict[int, bytearray] = {}
        self._current: bytearray | None = None

    def segments(self) -> list[int]:
        return sorted(self._segments)

    def create(self, number: int, data: bytes, reserve: int) -> int:
        self._current = bytearray(data)
        self._segments[number] = self._current
        return reserve

    def append(self, data: bytes) -> None:
        assert self._current is not None
        self._current += data

    def read(self, number: int, offset: int, size: int) -> bytes | None:
        segment = self._segments.get(number)
        return None if segment is None else bytes(segment[offset : offset + size])

    def delete(self, number: int) -> None:
        self._segments.pop(number, None)

    def sync(self) -> None:
        return None

    def close(self) -> None:
        return None


# ---- the writer: the training process's only way to the spool --------------------------------------------------
BACKGROUND_NICE = 10
"""How much nicer than the training thread the run's own threads are (the spool's helper, the sender and its
request thread), where the system has per-thread priorities (Linux): on a machine with fewer free cores than
busy threads, the kernel then lets the training loop run first."""


def lower_thread_priority() -> None:
    """Make the calling thread `BACKGROUND_NICE` nicer than the process's main thread (Linux, where the nice value
    is a thread's: setpriority(2); a thread starts with its creator's, so this sets it, never adds twice);
    nothing elsewhere, or when the system refuses. Measured with the server on the same 2 cores (100,000 `log()`
    calls, 6 interleaved processes, 2026-12-04): calls over 1 ms 10-31 against 24-52, and the training thread's
    time waiting for a CPU 1-111 ms against 22-235 ms."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):
        thread = threading.get_native_id()
        target = min(
            19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + BACKGROUND_NICE
        )  # main's TID is the PID
        if os.getpriority(os.PRIO_PROCESS, thread) < target:
            os.setpriority(os.PRIO_PROCESS, thread, target)


class _Helper:
    """The writer's daemon thread: makes the next segment ready (`FileStore.prepare`) and closes full ones
    (`FileStore.retire`), so that neither costs the training thread the milliseconds they take. Woken by the
    writer after each roll-over; idle (blocked on an event) otherwise.

    Not made nicer than the training thread, unlike the sender (`lower_thread_priority`): it works about a
    millisecond per roll-over, and niced on a busy machine it closed full segments late, so two to four of them
    stayed mapped (and resident) at once: up to 3.5 MiB of the process's peak RSS (2026-12-04)."""

    def __init__(self, store: FileStore, data: bytes, reserve: int) -> None:
        self._store = store
        self._data = data
        self._reserve = reserve
        self._next = 0
        self._stopped = False
        self._wanted = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tally-spool-helper", daemon=True)
        store.deferred = True
        self._thread.start()

    def want(self, number: int) -> None:
        """Segment `number` is the next one: make it ready (and close what the writer has finished)."""
        self._next = number
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopped:
                return
            try:
                self._store.retire()
                self._store.prepare(self._next, self._data, self._reserve)
            except Exception as error:  # pragma: no cover - the roll-over then does it on the caller's thread
                logger.debug("tally: the spool's helper failed: %s", error)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped = True
        self._wanted.set()
        self._thread.join(timeout)
        self._store.deferred = False


class SpoolWriter:
    """Appends framed records to the newest segment, rolls segments, and applies the size cap and, the same way,
    a full disk.

    `append` is called on the training thread for every `log()`: a copy into the map and two size checks, nothing
    else. `release(n)` is called by the sender once segment `n` is stored, to free its bytes.

    Hot-path rules (`append` runs inside `run.log()`, whose budget is about 1 us a value and never 1 ms a call):
    no system call and no lock on the common path; a roll-over takes a segment the helper thread made ready and
    leaves the full one for it to close (see `_Helper`); only a full disk or the cap may wait. Work that takes
    milliseconds belongs on the helper or the sender, never here."""

    racing = False
    """(Appends in this process, under the GIL: a reader here never sees half a record. See `decode_records`.)"""

    def __init__(
        self,
        store: Store,
        header: Mapping[str, Any],
        *,
        cap_bytes: int = DEFAULT_CAP_BYTES,
        segment_bytes: int | None = None,
        policy: CapPolicy = "block",
        can_wait: bool = True,
    ) -> None:
        if cap_bytes < 1 << 16:
            raise ValueError(f"spool_cap must be at least 65536 bytes, not {cap_bytes}")
        if policy not in ("block", "drop_oldest"):
            raise ValueError(f"on_full must be 'block' or 'drop_oldest', not {policy!r}")
        self.store = store
        self.cap_bytes = cap_bytes
        self.segment_bytes = segment_bytes or max(1 << 14, min(DEFAULT_SEGMENT_BYTES, cap_bytes // 8))
        self.policy: CapPolicy = policy
        self.can_wait = can_wait
        self._header_frame = frame([0, dict(header)])
        self.segment_start = MAGIC + self._header_frame
        """What every segment of this run starts with (a sender process makes segments ready with it)."""
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}  # segment -> bytes, for the cap
        self._events: dict[int, int] = {}  # segment -> events logged in it (to count what a drop loses)
        self.total_bytes = 0
        self.dropped_events = 0
        self.segment = 0
        self._size = 0
        self._capacity = 0  # the bytes reserved for the current segment
        self._segment_events = 0
        self._told_disk_full = False
        self.closed = False
        self.released_elsewhere = False
        """True once a sender process has the segments' upkeep (`hand_over`)."""
        self.sender_alive: Callable[[], bool] | None = None
        """Whether the sender process is still running, started again if it ended unasked (`hand_over`): on a
        full disk and at the cap, `log()` waits for it to free segments only while it is."""
        self._helper: _Helper | None = None
        self._roll()
        if isinstance(store, FileStore):
            self._helper = _Helper(store, MAGIC + self._header_frame, self.segment_bytes)
            self._helper.want(self.segment + 1)

    def _roll(self) -> None:
        """Start the next segment, its space reserved; on a full disk, the `on_full` policy first frees some."""
        data = MAGIC + self._header_frame
        while True:
            # Under the lock: once the next segment exists, the sender may finish this one and release it, which
            # it may do only once `self.segment` has moved on.
            with self._lock:
                try:
                    capacity = self.store.create(self.segment + 1, data, self.segment_bytes)
                except OSError as error:
                    if error.errno not in NO_SPACE:
                        raise
                    full = error
                else:
                    if self.segment:
                        self._sizes[self.segment] = self._size
                        self._events[self.segment] = self._segment_events
                        self.total_bytes += self._size
                    self.segment += 1
                    self._size = len(data)
                    self._capacity = capacity
                    self._segment_events = 0
                    if self._helper is not None:
                        self._helper.want(self.segment + 1)
                    return
            self._disk_full(full)  # (outside the lock: it may wait for the sender to release a segment)

    def append(self, data: bytes, events: int) -> None:
        """Write one framed record (`events` metric values or annotations in it) before returning; raise
        `SpoolFullError` (with nothing written) when the cap or the disk is full and `on_full` cannot make room."""
        size = len(data)
        if self._size + size > self._capacity and self._segment_events:
            self._roll()  # before the write, so that a full disk fails the call that could not be written
        if self.total_bytes + self._size + size > self.cap_bytes:
            self._make_room(size)
        while True:
            try:
                self.store.append(data)  # (a record larger than a segment reserves more for itself)
                break
            except OSError as error:
                if error.errno not in NO_SPACE:
                    raise
                self._disk_full(error)
        self._size += size
        self._segment_events += events

    def hand_over(self, sender_alive: Callable[[], bool] | None = None) -> None:
        """A sender process takes over the segments' upkeep (`_sender_process`): it makes the next ones ready and
        deletes those it has stored, instead of this writer's helper thread and `release`. So no thread of the
        run's is left in this process; the writer notices the deleted segments on the cap's slow paths
        (`forget_deleted`)."""
        self.released_elsewhere = True
        self.sender_alive = sender_alive
        if self._helper is not None:
            self._helper.stop()
            self._helper = None
        if isinstance(self.store, FileStore):
            self.store.retire()
            self.store.prepared_elsewhere = True
            # The first few, here: the sender process needs a tenth of a second or more to start making them,
            # and a loop can fill several segments meanwhile.
            prepare_ahead(self.store, self.segment_start, self.segment_bytes, READY_AHEAD)

    def forget_deleted(self) -> None:
        """Stop counting, against the cap, the segments a sender in another process has deleted once stored (on
        the cap's slow paths): a listing of the spool."""
        if not self.released_elsewhere or not isinstance(self.store, FileStore):
            return
        on_disk = set(self.store.segments())
        with self._lock:
            for number in [n for n in self._sizes if n not in on_disk]:
                self.total_bytes -= self._sizes.pop(number)
                self._events.pop(number, None)

    def _drop_oldest(self, why: str) -> bool:
        """Delete the oldest segment that is not being written; False when there is none."""
        self.forget_deleted()  # (stored meanwhile: not dropped)
        with self._lock:
            if not self._sizes:
                return False
            oldest = min(self._sizes)
            self.total_bytes -= self._sizes.pop(oldest)
            lost = self._events.pop(oldest, 0)
            self.store.delete(oldest)
        self.dropped_events += lost
        logger.warning(
            "tally: %s; dropped its oldest %d events (%d dropped so far)", why, lost, self.dropped_events
        )
        return True

    def _wait_for_release(self) -> bool:
        """Wait until the sender frees an older segment; False at once when there is none to free."""
        with self._lock:
            older = len(self._sizes)
        while older:
            if self.sender_alive is not None and not self.sender_alive():
                return False
            time.sleep(0.01)  # the sender frees whole segments as the server stores them
            self.forget_deleted()
            with self._lock:
                if len(self._sizes) < older:
                    return True
        return False

    def _disk_full(self, error: OSError) -> None:
        """The disk refused a reservation: free space by the `on_full` policy (then the caller tries again), or
        raise `SpoolFullError` naming the directory and the fix when nothing can be freed."""
        where = self.store.location or "memory"
        if isinstance(self.store, FileStore):
            # Finished segments the helper has not closed yet still hold their whole reservation, and a dropped one
            # keeps its blocks while mapped: close them here first (the helper's work, done now on this slow path).
            self.store.retire()
            if self.store.drop_spare():
                return  # the segment made ahead held the space: given back, the caller tries again
        if self.policy == "drop_oldest":
            if self._drop_oldest(f"no space left on the device of the spool {where}"):
                return
        elif self.can_wait:
            if not self._told_disk_full:
                self._told_disk_full = True
                logger.warning(
                    "tally: no space left on the device of the spool %s; log() waits for the sender to free "
                    "stored segments (on_full='block'); free space there or set TALLY_SPOOL_DIR to a larger disk",
                    where,
                )
            if self._wait_for_release():
                return
        if self.policy == "block" and not self.can_wait:
            why, fix = "nothing sends it (offline)", ", or upload what it holds with `tally sync`"
        elif self.policy == "block" and self.sender_alive is not None and not self.sender_alive():
            why, fix = "the run's sender process has ended", ", and upload what it holds with `tally sync`"
        else:
            why, fix = (
                "it holds no older segment to " + ("drop" if self.policy == "drop_oldest" else "free"),
                "",
            )
        raise SpoolFullError(
            f"no space left on the device of the spool {where} ({error.strerror}) and {why}: free space there, "
            f"or set {SPOOL_DIR_ENV} to a directory on a larger disk{fix}"
        ) from error

    def _make_room(self, size: int) -> None:
        self.forget_deleted()
        if self.total_bytes + self._size + size <= self.cap_bytes:
            return
        if self.policy == "drop_oldest":
            while self.total_bytes + self._size + size > self.cap_bytes and self._drop_oldest(
                f"the spool reached its cap of {self.cap_bytes} bytes (raise spool_cap= or use on_full='block')"
            ):
                pass
            if not self._sizes and self._size + size > self.cap_bytes:
                self._roll()
            return
        if not self.can_wait:
            raise SpoolFullError(
                f"the spool reached its cap of {self.cap_bytes} bytes and nothing sends it (offline): "
                "raise spool_cap=, use on_full='drop_oldest', or sync it with `tally sync`"
            )
        while self.total_bytes + self._size + size > self.cap_bytes and self._sizes:
            if self.sender_alive is not None and not self.sender_alive():
                raise SpoolFullError(
                    f"the spool reached its cap of {self.cap_bytes} bytes and the run's sender process has ended: "
                    "raise spool_cap=, use on_full='drop_oldest', or upload what it holds with `tally sync`"
                )
            time.sleep(0.01)  # the sender frees whole segments as the server stores them
            self.forget_deleted()
        if self.total_bytes + self._size + size > self.cap_bytes:
            self._roll()

    def release(self, number: int) -> None:
        """Segment `number` is stored: delete it (never the one being written)."""
        with self._lock:
            if number >= self.segment:
                return
            self.total_bytes -= self._sizes.pop(number, 0)
            self._events.pop(number, None)
            self.store.delete(number)

    def close(self) -> None:
        self.closed = True
        if self._helper is not None:
            self._helper.stop()
        self.store.close()


READY_AHEAD = 8
"""Segments a sender process keeps ready ahead of the writer in the training process (`prepare_ahead`): about
56 ms of `log()` calls of 10 metrics at the bench's pace (about 280,000 calls a second), 4 MiB of disk reserved
at the default segment size (reserved, not mapped: no memory). With 4, the preparer, short of a CPU beside the
sender and a server on the same two cores, fell behind: 5-15 roll-overs in 1,000,000 calls made their file on
the training thread, 1-1.6 ms each (2026-12-04)."""
PREPARE_SECONDS = 0.005
"""How often a sender process makes the writer's next segments ready (`Preparer`): a listing of the spool."""


class Preparer:
    """A sender process's thread that keeps the next `READY_AHEAD` segments of a writer in the training process
    ready (`prepare_ahead`), so that no thread of the training process's does (`SpoolWriter.hand_over`). Started
    before the sender process imports its client (`tally.run._sender_wire` says why)."""

    def __init__(self, directory: Path, start: bytes, reserve: int) -> None:
        self._store = FileStore(directory)
        self._start = start
        self._reserve = reserve
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tally-spool-preparer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(PREPARE_SECONDS):
            try:
                prepare_ahead(self._store, self._start, self._reserve, READY_AHEAD)
            except Exception as error:  # the writer then makes its segments itself
                logger.debug("tally: making spool segments ready failed: %s", error)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def prepare_ahead(store: FileStore, start: bytes, reserve: int, ahead: int) -> None:
    """Make the `ahead` segments after the newest ready for a writer in another process (`FileStore._adopt`):
    `<n>.next`, starting with `start`, `reserve` bytes of disk reserved, made under a temporary name and renamed
    once whole. Leftovers that a writer created itself meanwhile are removed. Nothing on a full disk (the
    writer then makes its segment itself, with its `on_full` policy)."""
    segments = store.segments()
    if not segments:
        return
    newest = segments[-1]
    try:
        names = os.listdir(store.directory)
    except FileNotFoundError:
        return
    for number in _numbered(names, SPARE_SUFFIX):
        if number <= newest:
            with contextlib.suppress(FileNotFoundError):
                store._spare_path(number).unlink()
    size = _pages(max(reserve, len(start) + 1))
    for number in range(newest + 1, newest + 1 + ahead):
        path = store._spare_path(number)
        if path.exists():
            continue
        try:
            free = os.statvfs(store.directory)
        except OSError:
            return
        if size > free.f_bavail * free.f_frsize // 2:
            # As the writer's own segments do (`FileStore._open_segment`): at most half of the free space, so that
            # on a small disk the writer, the progress and the state files keep room. (Until 2026-12-04 a sender
            # process filled a full disk with ready segments, then died writing its state file.)
            return
        temporary = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            return
        try:
            os.write(fd, start)
            _allocate(fd, size)
        except OSError as error:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            if error.errno not in NO_SPACE:
                logger.debug("tally: preparing spool segment %d failed: %s", number, error)
            return
        os.close(fd)
        os.replace(temporary, path)
        if store.path(number).exists():  # written and renamed since this listing: not one to make ready
            path.unlink(missing_ok=True)


# ---- the lock: one owner per spool ------------------------------------------------------------------------------
class SpoolLock:
    """An advisory lock on `<spool>/lock`; the kernel drops it when its process dies."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True if this process now owns the spool; False if another live process does."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            return False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        self._fd = fd
        return True

    @property
    def fd(self) -> int | None:
        """The locked descriptor (a sender process inherits it, and so holds the lock too: `_sender_process`)."""
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def iter_spools(root: Path) -> Iterator[Path]:
    """Every run's spool directory under `root`, oldest run first (run keys sort by time)."""
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return
    for name in names:
        path = root / name
        if path.is_dir() and (path / "lock").exists():
            yield path


def read_header(store: Store) -> Mapping[str, Any] | None:
    """The run's header, from the start of its oldest segment."""
    for number in store.segments():
        data = store.read(number, 0, 1 << 16)
        if not data or not data.startswith(MAGIC):
            continue
        decoded = decode_records(data[len(MAGIC) :], base=len(MAGIC), final=False)
        if decoded.records:
            return run_header(decoded.records[0][1])
    return None


def read_progress(directory: Path) -> dict[str, Any]:
    """The last state the sender recorded for this spool (`_format.last_progress`)."""
    try:
        data = (directory / "progress").read_bytes()
    except FileNotFoundError:
        data = b""
    return last_progress(data)


def remove_spool(directory: Path) -> None:
    """Delete a spool whose every record is stored."""
    shutil.rmtree(directory, ignore_errors=True)
