"""A bounded, durable spool of events that could not be applied (the profile store or the
catalog down), applied when they return.

Each spool (one per API process) appends to a file of its own in a shared folder,
``events-<pid>-<random>.jsonl``: one event a line (`Event.to_dict` as JSON, ASCII), each
append written whole and fsync'd. It holds at most ``max_events`` events: beyond that
`SpoolFull` (the API answers 503 with Retry-After) and nothing of the batch is written.

Beside each data file, ``.owner`` is flock'd by the live spool that writes it, for as long as it
lives: a spool that can lock another's ``.owner`` knows its writer is gone and drains that file
too (so two live processes never drain one file). ``.lock`` is flock'd around every
read-modify-write of the data file (an append, a drained chunk, an erasure), by any process.

Draining applies the oldest ``chunk`` events, then drops them from the file (the rest copied to
a temporary file that replaces it, fsync'd): a crash between the two applies them again, which
the profile stores ignore (idempotent on event id). A line that does not parse (a crash in the
middle of an append) is logged and skipped, never blocks the rest.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from personalization.events import Event, hashed_user
from personalization.stores.base import ProfileStoreUnavailable

logger = logging.getLogger(__name__)

DEFAULT_MAX_EVENTS = 100_000
DEFAULT_CHUNK = 1_000
RETRY_AFTER_S = 30  # what a refused client is told to wait: the spool full means a long outage
PREFIX = "events-"
DATA = ".jsonl"
OWNER = ".owner"
LOCK = ".lock"
TEMP = ".tmp"


class SpoolFull(ProfileStoreUnavailable):
    """The store is down and the spool cannot take the batch (full, or its disk failed);
    nothing of the batch was written. ``retry_after_s``: when to send it again."""

    def __init__(self, message: str, *, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SpoolStats:
    """Events waiting in this process's spool (and in files of dead processes it has seen),
    and the bound of its own file."""

    queued: int
    max_events: int


Apply = Callable[[list[Event]], object]


def _line(event: Event) -> bytes:
    return json.dumps(event.to_dict(), separators=(",", ":")).encode("ascii") + b"\n"


def _parse(line: bytes, path: Path) -> Event | None:
    """The event of a line, or None (logged) when it does not parse."""
    try:
        return Event.from_dict(json.loads(line))
    except (ValueError, TypeError, AttributeError):
        logger.warning("skipping a damaged line in the event spool %s (%d bytes)", path, len(line))
        return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _count_lines(path: Path) -> int:
    """Lines in the file, a last one without a newline included."""
    try:
        with path.open("rb") as f:
            count, last = 0, b"\n"
            while block := f.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
            return count + (last != b"\n")
    except FileNotFoundError:
        return 0


class EventSpool:
    """Events waiting for the store, in ``folder`` (created when missing), at most
    ``max_events`` in this spool's own file."""

    def __init__(
        self, folder: Path, *, max_events: int = DEFAULT_MAX_EVENTS, chunk: int = DEFAULT_CHUNK
    ) -> None:
        if max_events < 1 or chunk < 1:
            msg = "max_events and chunk must be at least 1"
            raise ValueError(msg)
        self.folder = Path(folder)
        self.max_events = max_events
        self.chunk = chunk
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self.path = self.folder / (self.name + DATA)
        # locked before it gets its name: no other process ever sees it unlocked
        fresh = self.folder / (self.name + OWNER + ".new")
        self._owner: IO[bytes] | None = fresh.open("ab")
        fcntl.flock(self._owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fresh.rename(self.folder / (self.name + OWNER))
        self._count = 0  # lines in our own file
        self._seen: tuple[int, int] | None = None  # (inode, size) after our last change
        self._orphans = 0  # events in dead processes' files, at the last look
        self._draining = threading.Lock()  # one drain of the folder at a time in this process

    # -- what is waiting -------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events in this spool's own file (an in-memory count: cheap)."""
        return self._count

    def stats(self) -> SpoolStats:
        """Events waiting here (and in dead processes' files last seen), and the bound."""
        return SpoolStats(queued=self._count + self._orphans, max_events=self.max_events)

    # -- writing ---------------------------------------------------------------------------

    def append(self, events: list[Event]) -> int:
        """Write ``events`` to the end of the spool, fsync'd; how many. `SpoolFull` when they
        do not fit under the bound or the disk fails: then nothing of them is written."""
        if not events:
            return 0
        data = b"".join(_line(e) for e in events)
        with self._mutex(self.path):
            self._sync_count()
            if self._count + len(events) > self.max_events:
                msg = (
                    f"the event spool is full ({self._count} of {self.max_events} events "
                    f"queued; {len(events)} more refused)"
                )
                raise SpoolFull(msg)
            new = not self.path.exists()
            try:
                with self.path.open("a+b") as f:
                    size = os.fstat(f.fileno()).st_size
                    try:
                        if size and os.pread(f.fileno(), 1, size - 1) != b"\n":
                            data = b"\n" + data  # a crash left half a line: end it first
                        f.write(data)
                        f.flush()
                        os.fsync(f.fileno())
                    except OSError:
                        f.truncate(size)  # nothing half-written
                        raise
                if new:
                    _fsync_dir(self.folder)
            except OSError as exc:
                msg = f"cannot write the event spool {self.path}: {exc}"
                raise SpoolFull(msg) from exc
            self._count += len(events)
            self._remember()
        return len(events)

    def erase(self, user_id: str) -> int:
        """Remove every queued event of the shopper, from every spool file in the folder
        (other processes' too); how many."""
        removed = 0
        for path in sorted(self.folder.glob(f"{PREFIX}*{DATA}")):
            with self._mutex(path):
                removed += self._erase_in(path, user_id)
        if removed:
            logger.info("erased %d queued events of user %s", removed, hashed_user(user_id))
        return removed

    # -- draining --------------------------------------------------------------------------

    def drain(self, apply: Apply, *, limit: int | None = None, orphans: bool = True) -> int:
        """Apply queued events, oldest first, ``chunk`` at a time, each chunk then dropped;
        stop after ``limit`` events (None: all). With ``orphans``, also the files of
        processes that are gone. How many events were handed to ``apply`` (0 at once while
        another thread drains); an exception of ``apply`` keeps its chunk and stops the drain
        (it propagates)."""
        if not self._draining.acquire(blocking=False):
            return 0  # another thread drains now
        try:
            done = self._drain_file(self.path, apply, limit, own=True)
            if orphans and (limit is None or done < limit):
                done += self._drain_orphans(apply, None if limit is None else limit - done)
            return done
        finally:
            self._draining.release()

    def _drain_orphans(self, apply: Apply, limit: int | None) -> int:
        done, left = 0, 0
        try:
            for path in sorted(self.folder.glob(f"{PREFIX}*{DATA}")):
                if path == self.path:
                    continue
                with self._adopted(path) as mine:
                    if not mine:
                        continue
                    try:
                        done += self._drain_file(
                            path, apply, None if limit is None else limit - done, own=False
                        )
                    finally:
                        remaining = _count_lines(path)
                        left += remaining
                        if not remaining:
                            self._remove(path)
                            logger.info("drained the event spool %s of a stopped process", path)
                if limit is not None and done >= limit:
                    break
        finally:
            self._orphans = left
        self._sweep()
        return done

    def _sweep(self) -> None:
        """Remove the lock files of stopped processes that left no events."""
        for owner in self.folder.glob(f"{PREFIX}*{OWNER}"):
            stem = owner.name.removesuffix(OWNER)
            if stem == self.name or (self.folder / (stem + DATA)).exists():
                continue
            with owner.open("ab") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # alive, and has queued nothing yet
                if not (self.folder / (stem + DATA)).exists():
                    (self.folder / (stem + LOCK)).unlink(missing_ok=True)
                    owner.unlink(missing_ok=True)
                fcntl.flock(f, fcntl.LOCK_UN)
        for fresh in self.folder.glob(f"{PREFIX}*{OWNER}.new"):  # died before naming it
            with contextlib.suppress(FileNotFoundError):
                if time.time() - fresh.stat().st_mtime < 60:
                    continue  # a spool being made now
            with fresh.open("ab") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                fresh.unlink(missing_ok=True)

    def _drain_file(self, path: Path, apply: Apply, limit: int | None, *, own: bool) -> int:
        done = 0
        while limit is None or done < limit:
            size = self.chunk if limit is None else min(self.chunk, limit - done)
            with self._mutex(path):
                if own:
                    self._sync_count()
                events, offset = self._head(path, size)
                if offset == 0:
                    return done
                if events:
                    apply(events)
                self._drop_head(path, offset)
                if own:
                    self._count = _count_lines(path)
                    self._remember()
            done += len(events)
        return done

    def _head(self, path: Path, size: int) -> tuple[list[Event], int]:
        """The first ``size`` events of the file (damaged lines skipped) and the offset just
        after them."""
        events: list[Event] = []
        try:
            f = path.open("rb")
        except FileNotFoundError:
            return [], 0
        with f:
            while len(events) < size:
                line = f.readline()
                if not line:
                    break
                if line.strip():
                    event = _parse(line, path)
                    if event is not None:
                        events.append(event)
            return events, f.tell()

    def _drop_head(self, path: Path, offset: int) -> None:
        """Drop the file's first ``offset`` bytes: the rest replaces it, or it goes."""
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() <= offset:
                path.unlink()
            else:
                f.seek(offset)
                self._replace(path, lambda out: shutil.copyfileobj(f, out, 1 << 20))
                return
        _fsync_dir(self.folder)

    def _erase_in(self, path: Path, user_id: str) -> int:
        """Rewrite ``path`` without the shopper's events (and damaged lines naming them)."""
        try:
            lines = path.read_bytes().splitlines(keepends=True)
        except FileNotFoundError:
            return 0
        needle = json.dumps(user_id).encode("ascii")
        kept: list[bytes] = []
        removed = 0
        for line in lines:
            if not line.strip():
                continue
            event = _parse(line, path) if needle in line else None
            if event is not None and event.user_id == user_id:
                removed += 1
            elif event is None and needle in line:
                pass  # damaged, and may hold the shopper's data
            else:
                kept.append(line if line.endswith(b"\n") else line + b"\n")
        if len(kept) == len(lines):
            return 0
        if kept:
            self._replace(path, lambda out: out.write(b"".join(kept)))
        else:
            path.unlink()
            _fsync_dir(self.folder)
        if path == self.path:
            self._count = len(kept)
            self._remember()
        return removed

    # -- files and locks -------------------------------------------------------------------

    def _replace(self, path: Path, write: Callable[[IO[bytes]], object]) -> None:
        """Replace ``path`` atomically with what ``write`` writes, fsync'd."""
        temp = path.with_name(path.name + TEMP)
        with temp.open("wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        temp.replace(path)
        _fsync_dir(self.folder)

    @contextlib.contextmanager
    def _mutex(self, path: Path) -> Iterator[None]:
        """Exclusive use of one data file (between threads and processes)."""
        lock = path.with_name(path.name.removesuffix(DATA) + LOCK)
        with lock.open("ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _adopted(self, path: Path) -> Iterator[bool]:
        """Whether the writer of ``path`` is gone (its ``.owner`` lock is free): then held
        for the block, so that no other process drains it meanwhile."""
        owner = path.with_name(path.name.removesuffix(DATA) + OWNER)
        with owner.open("ab") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False  # its process is alive, or another one drains it
                return
            try:
                yield path.exists()
            finally:
                if not path.exists():
                    owner.unlink(missing_ok=True)
                fcntl.flock(f, fcntl.LOCK_UN)

    def _remove(self, path: Path) -> None:
        """Remove a drained file of a stopped process and its lock files."""
        stem = path.name.removesuffix(DATA)
        for name in (path.name, stem + LOCK, path.name + TEMP):
            (self.folder / name).unlink(missing_ok=True)

    def _remember(self) -> None:
        try:
            stat = self.path.stat()
            self._seen = (stat.st_ino, stat.st_size)
        except FileNotFoundError:
            self._seen = None

    def _sync_count(self) -> None:
        """Count our file's lines again when another process changed it (an erasure)."""
        try:
            stat = self.path.stat()
            now: tuple[int, int] | None = (stat.st_ino, stat.st_size)
        except FileNotFoundError:
            now = None
        if now != self._seen:
            self._count = _count_lines(self.path)
            self._seen = now

    def close(self) -> None:
        """Stop owning the file: events left in it wait for the next process to drain them;
        an empty spool leaves no file behind."""
        if self._owner is None:
            return
        with self._mutex(self.path):
            self._sync_count()
            empty = self._count == 0
            if empty:
                self.path.unlink(missing_ok=True)
        if empty:
            for suffix in (LOCK, DATA + TEMP):
                (self.folder / (self.name + suffix)).unlink(missing_ok=True)
            (self.folder / (self.name + OWNER)).unlink(missing_ok=True)
        fcntl.flock(self._owner, fcntl.LOCK_UN)
        self._owner.close()
        self._owner = None
