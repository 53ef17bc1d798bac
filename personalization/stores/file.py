"""Profiles in JSON files, one per user: the embedded default.

A user's file is named by the sha256 of the user id, so no user id ever becomes a path, and
holds the profile, the last events (newest first), the opt-out setting and when the profile
expires. Every write goes to a temporary file in the same folder that then replaces the old
one (`os.replace`), so a crash leaves the old file or the new one, never half of one. A thread
lock and an exclusive `flock` on ``.lock`` in the folder serialise read-modify-writes, between
threads and between worker processes on one machine.

A profile and its events expire ``ttl_s`` after the last write that stored an event; the
opt-out setting does not expire (it is the shopper's choice, not behaviour). Leftover
temporary files of a crashed write are removed when a store opens the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from personalization.events import Event, check_user_id, hashed_user
from personalization.profile import Profile
from personalization.stores.base import (
    DEFAULT_HALF_LIFE_S,
    DEFAULT_MAX_EVENTS,
    DEFAULT_MAX_KEYS,
    DEFAULT_TTL_S,
    Catalog,
    Erasure,
    IngestReport,
    ProfileStoreStats,
    ProfileStoreUnavailable,
    StoreLimits,
    apply_new,
    by_user,
    rebuilt_profile,
)
from retrieval.schema import Product

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
LOCK_NAME = ".lock"
TEMP_PREFIX = ".tmp-"
QUARANTINE_DIR = "quarantine"


def _event_or_none(item: Any) -> Event | None:
    try:
        return Event.from_dict(item)
    except (ValueError, TypeError, AttributeError):
        return None


def _damage(data: Any) -> str | None:
    """What makes a parsed file unusable, or None: a file of another format, a profile that
    does not load, or events that do not."""
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        return "an unknown format"
    profile = data.get("profile")
    if profile is not None:
        try:
            Profile.from_dict(profile, repair=False)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return f"a profile that does not load ({type(exc).__name__})"
    events = data.get("events", [])
    if not isinstance(events, list) or any(_event_or_none(e) is None for e in events):
        return "events that do not load"
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        return "an opt-out setting that is not true or false"
    return None


def user_file_name(user_id: str) -> str:
    """The name of the user's file: the sha256 of the user id, hex, with ``.json``."""
    return hashlib.sha256(check_user_id(user_id).encode()).hexdigest() + ".json"


class FileProfileStore:
    """Profiles as JSON files under ``folder`` (created when missing)."""

    def __init__(
        self,
        folder: Path,
        *,
        half_life_s: float = DEFAULT_HALF_LIFE_S,
        ttl_s: float = DEFAULT_TTL_S,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.time,
        catalog: Catalog | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.catalog = catalog  # rebuilds a damaged profile from the stored events
        self.limits = StoreLimits(half_life_s, ttl_s, max_events, max_keys)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self._locked():
                for leftover in self.folder.glob(TEMP_PREFIX + "*"):
                    leftover.unlink(missing_ok=True)
        except OSError as exc:
            msg = f"cannot use the profile folder {self.folder}: {exc}"
            raise ProfileStoreUnavailable(msg) from exc

    # -- the store -------------------------------------------------------------------------

    def add_events(
        self,
        events: Sequence[Event],
        products: Mapping[str, Product],
        vectors: Mapping[str, np.ndarray],
    ) -> IngestReport:
        """Apply ``events`` per user, in time order, once per event id (see `ProfileStore`)."""
        report = IngestReport()
        for user_id, group in by_user(events).items():
            with self._locked():
                report += self._add_user(user_id, group, products, vectors)
        return report

    def _add_user(
        self,
        user_id: str,
        events: Sequence[Event],
        products: Mapping[str, Product],
        vectors: Mapping[str, np.ndarray],
    ) -> IngestReport:
        data = self._read(user_id)
        if not data.get("enabled", True):
            return IngestReport(opted_out=len(events))
        raw_profile = data.get("profile")
        profile = Profile(user_id) if raw_profile is None else Profile.from_dict(raw_profile)
        kept = [Event.from_dict(item) for item in data.get("events", [])]
        seen = {event.event_id for event in kept}
        applied, duplicates = apply_new(profile, events, seen, products, vectors, self.limits)
        if applied:
            newest_first = [event.to_dict() for event in reversed(applied)]
            data["profile"] = profile.to_dict()
            data["events"] = (newest_first + data.get("events", []))[: self.limits.max_events]
            data["expires_at"] = self._clock() + self.limits.ttl_s
            self._write(user_id, data)
        return IngestReport(accepted=len(applied), duplicates=duplicates, applied=tuple(applied))

    def profile(self, user_id: str) -> Profile | None:
        """The stored profile, or None when there is none or it expired."""
        with self._locked():
            raw = self._read(user_id).get("profile")
        return None if raw is None else Profile.from_dict(raw)

    def events(self, user_id: str, limit: int = 100) -> list[Event]:
        """The last ``limit`` events stored, the most recently recorded first."""
        if limit < 0:
            msg = f"limit must not be negative, got {limit}"
            raise ValueError(msg)
        with self._locked():
            raw = self._read(user_id).get("events", [])
        return [Event.from_dict(item) for item in raw[:limit]]

    def set_enabled(self, user_id: str, enabled: bool) -> None:
        """Opt in (the default; the setting is removed) or out (kept until `erase`)."""
        with self._locked():
            data = self._read(user_id)
            if enabled:
                data.pop("enabled", None)
            else:
                data["enabled"] = False
            self._write(user_id, data)

    def enabled(self, user_id: str) -> bool:
        """Whether personalisation is on for the user (True unless they opted out)."""
        with self._locked():
            return bool(self._read(user_id).get("enabled", True))

    def erase(self, user_id: str) -> Erasure:
        """Delete the user's file, whatever it holds (even when it cannot be read)."""
        path = self._path(user_id)
        with self._locked():
            try:
                data = self._read(user_id)
            except ProfileStoreUnavailable:
                data = {}
            aside = sorted(self.quarantine_dir.glob(f"{path.stem}.*.json"))
            try:
                existed = path.exists()
                path.unlink(missing_ok=True)
                for damaged in aside:  # what was moved aside is the shopper's data too
                    damaged.unlink(missing_ok=True)
            except OSError as exc:
                msg = f"cannot erase the profile file {path.name}: {exc}"
                raise ProfileStoreUnavailable(msg) from exc
        return Erasure(
            profile=data.get("profile") is not None,
            events=len(data.get("events", [])),
            settings="enabled" in data,
            removed=([path.name] if existed else [])
            + [f"{QUARANTINE_DIR}/{p.name}" for p in aside],
        )

    def stats(self) -> ProfileStoreStats:
        """``file``, available when the folder is writable, and the files quarantined."""
        quarantined = sum(1 for _ in self.quarantine_dir.glob("*.json"))
        return ProfileStoreStats(
            "file", os.access(self.folder, os.W_OK | os.X_OK), quarantined=quarantined
        )

    def close(self) -> None:
        """Nothing to release: every call opens and closes its files."""

    # -- files -----------------------------------------------------------------------------

    def _path(self, user_id: str) -> Path:
        return self.folder / user_file_name(user_id)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """This process's threads, then other processes, one at a time."""
        with self._lock, contextlib.ExitStack() as stack:
            try:
                handle = stack.enter_context(open(self.folder / LOCK_NAME, "a+b"))
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
            except OSError as exc:
                msg = f"cannot lock the profile folder {self.folder}: {exc}"
                raise ProfileStoreUnavailable(msg) from exc
            yield

    def _read(self, user_id: str) -> dict[str, Any]:
        """The user's stored data ({} when none); an expired profile is removed first."""
        path = self._path(user_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            msg = f"cannot read the profile file {path.name}: {exc}"
            raise ProfileStoreUnavailable(msg) from exc
        try:
            data = json.loads(raw)
            damage = _damage(data)
        except ValueError as exc:
            data, damage = None, f"not valid JSON ({exc})"
        if damage is not None:
            data = self._quarantine(user_id, data, damage)
        expires_at = data.get("expires_at")
        if expires_at is not None and self._clock() >= expires_at:
            for name in ("profile", "events", "expires_at"):
                data.pop(name, None)
            self._write(user_id, data)
        return data

    def _quarantine(self, user_id: str, data: Any, damage: str) -> dict[str, Any]:
        """Move a damaged file aside (``quarantine/``, kept for whoever repairs it, erased
        with the shopper) and start the shopper again: the events that still parse are kept
        (so their ids are not counted twice), the profile is rebuilt from them with the
        ``catalog`` (empty without one, or while it is down), and an opt-out that
        cannot be read is kept as an opt-out (off until the shopper turns it on again)."""
        path = self._path(user_id)
        aside = self.quarantine_dir / f"{path.stem}.{time.time_ns()}.json"
        try:
            aside.parent.mkdir(exist_ok=True)
            os.replace(path, aside)
        except OSError as exc:
            msg = f"cannot move the damaged profile file {path.name} aside: {exc}"
            raise ProfileStoreUnavailable(msg) from exc
        readable = data if isinstance(data, dict) else {}
        # absent: never opted out; unreadable (or not JSON at all): kept off, to be safe
        enabled = readable.get("enabled", True) if isinstance(data, dict) else False
        stored = readable.get("events")
        events = (
            [e for e in stored if _event_or_none(e) is not None] if isinstance(stored, list) else []
        )
        fresh: dict[str, Any] = {"enabled": enabled if isinstance(enabled, bool) else False}
        rebuilt = rebuilt_profile(
            user_id, [Event.from_dict(e) for e in events], self.catalog, self.limits
        )
        if events:
            fresh["events"] = events
            fresh["expires_at"] = self._clock() + self.limits.ttl_s
        if rebuilt.events:
            fresh["profile"] = rebuilt.to_dict()
        self._write(user_id, fresh)
        logger.warning(
            "damaged profile quarantined",
            extra={
                "user": hashed_user(user_id),
                "damage": damage,
                "kept_events": len(events),
                "rebuilt_from": rebuilt.events,
                "quarantine": aside.name,
            },
        )
        return {"version": FORMAT_VERSION, **fresh}

    @property
    def quarantine_dir(self) -> Path:
        """Where damaged files are moved."""
        return self.folder / QUARANTINE_DIR

    def _write(self, user_id: str, data: dict[str, Any]) -> None:
        """Replace the user's file atomically; remove it when nothing is left to keep."""
        path = self._path(user_id)
        stored = {key: value for key, value in data.items() if key != "version"}
        try:
            if not stored:
                path.unlink(missing_ok=True)
                return
            body = json.dumps({"version": FORMAT_VERSION, **stored}, ensure_ascii=False)
            handle, temp = tempfile.mkstemp(dir=self.folder, prefix=TEMP_PREFIX)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(body.encode())
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as exc:
            msg = f"cannot write the profile file {path.name}: {exc}"
            raise ProfileStoreUnavailable(msg) from exc
