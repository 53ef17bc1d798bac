"""API keys of the shop's services: stored as SHA-256 digests with their scopes, from a JSON
file (re-read when it changes, so keys rotate without a restart) and from the environment.

A key is ``sg_<id>_<secret>``: the id names it in logs and the ring; the secret never leaves
the caller (`new_key` makes one, `digest` is what the ring stores). A key's secret is 32 random
bytes, so one SHA-256 is enough to store it: there is nothing to guess a dictionary from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SCOPES = ("search", "events", "profiles", "admin")
KEY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
_KEY = re.compile(r"^sg_([a-z0-9][a-z0-9-]{0,31})_([A-Za-z0-9_-]{20,200})$")
RELOAD_EVERY_S = 1.0


class KeyFileError(ValueError):
    """A key file or setting that cannot be read: what and where."""


@dataclass(frozen=True)
class ApiKey:
    """A service's key as the ring keeps it: its id, the digest of the whole key, its scopes."""

    id: str
    sha256: str
    scopes: frozenset[str]


def digest(key: str) -> str:
    """The SHA-256 hex digest of ``key``: what is stored in place of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(key_id: str) -> str:
    """A new random key named ``key_id``."""
    if not re.match(KEY_ID_PATTERN, key_id):
        msg = f"a key id is 1-32 lowercase letters, digits and '-', not {key_id!r}"
        raise ValueError(msg)
    return f"sg_{key_id}_{secrets.token_urlsafe(32)}"


def key_id(key: str) -> str | None:
    """The id a presented key names (None: it is not shaped as a key)."""
    match = _KEY.match(key)
    return match[1] if match else None


def parse_keys(text: str, where: str) -> dict[str, ApiKey]:
    """The keys of a JSON list of ``{"id", "sha256", "scopes"}`` (or an object holding it
    under ``"keys"``), by id; an error names ``where`` and the entry."""
    try:
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        msg = f"{where}: not JSON: {exc}"
        raise KeyFileError(msg) from exc
    entries = data.get("keys", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        msg = f"{where}: expected a list of keys"
        raise KeyFileError(msg)
    keys: dict[str, ApiKey] = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            msg = f"{where}: key {number} is not an object"
            raise KeyFileError(msg)
        key_id_, sha, scopes = entry.get("id"), entry.get("sha256"), entry.get("scopes")
        if not isinstance(key_id_, str) or not re.match(KEY_ID_PATTERN, key_id_):
            msg = f"{where}: key {number}: 'id' must match {KEY_ID_PATTERN}"
            raise KeyFileError(msg)
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            msg = f"{where}: key {key_id_!r}: 'sha256' must be 64 lowercase hex digits"
            raise KeyFileError(msg)
        if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
            msg = f"{where}: key {key_id_!r}: 'scopes' must be a non-empty list of {SCOPES}"
            raise KeyFileError(msg)
        if key_id_ in keys:
            msg = f"{where}: key id {key_id_!r} appears twice"
            raise KeyFileError(msg)
        keys[key_id_] = ApiKey(key_id_, sha, frozenset(scopes))
    return keys


def key_entry(key: str, scopes: list[str]) -> dict[str, object]:
    """The stored form of ``key``: what a key file lists."""
    kid = key_id(key)
    if kid is None:
        msg = "not a key made by new_key"
        raise ValueError(msg)
    return {"id": kid, "sha256": digest(key), "scopes": scopes}


class KeyRing:
    """The keys the API accepts: those of ``text`` (the environment) and of ``path``, whose
    file is re-read when it changes (checked at most once a second). A key file that turns
    unreadable keeps the keys last read, and says why in the log."""

    def __init__(self, text: str = "", path: Path | None = None) -> None:
        self._fixed = parse_keys(text, "SHOPGUIDE_API_KEYS")
        self.path = path
        self._from_file: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        if path is not None and path.exists():
            self._from_file = parse_keys(path.read_text(encoding="utf-8"), str(path))
            self._stamp = _stamp(path)

    def __len__(self) -> int:
        self._refresh()
        return len(self._fixed) + len(self._from_file)

    def check(self, key: str) -> ApiKey | None:
        """The key ``key`` is, if the ring holds it (compared in constant time)."""
        kid = key_id(key)
        if kid is None:
            return None
        self._refresh()
        known = self._fixed.get(kid) or self._from_file.get(kid)
        if known is None or not hmac.compare_digest(known.sha256, digest(key)):
            return None
        return known

    def _refresh(self) -> None:
        if self.path is None or time.monotonic() - self._checked < RELOAD_EVERY_S:
            return
        with self._lock:
            self._checked = time.monotonic()
            stamp = _stamp(self.path) if self.path.exists() else None
            if stamp == self._stamp:
                return
            try:
                text = self.path.read_text(encoding="utf-8") if stamp is not None else ""
                self._from_file = parse_keys(text, str(self.path))
            except (OSError, KeyFileError) as exc:
                logger.error("API keys not reloaded, keeping the last ones: %s", exc)
                return
            self._stamp = stamp
            logger.info("API keys reloaded from %s: %d keys", self.path, len(self._from_file))


def _stamp(path: Path) -> tuple[int, int, int]:
    stat = path.stat()  # a file replaced by a rename has a new inode
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _read_entries(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    keys = parse_keys(path.read_text(encoding="utf-8"), str(path))
    return [{"id": k.id, "sha256": k.sha256, "scopes": sorted(k.scopes)} for k in keys.values()]


def _write_entries(path: Path, entries: list[dict[str, object]]) -> None:
    """Replace the key file in one rename, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temporary.write_text(json.dumps({"keys": entries}, indent=2) + "\n", encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)


def add_key(path: Path, new_id: str, scopes: list[str]) -> str:
    """Make a key named ``new_id`` with ``scopes``, store its digest in the key file at
    ``path``, and return the key (shown once: the file keeps only its digest)."""
    unknown = set(scopes) - set(SCOPES)
    if not scopes or unknown:
        msg = f"scopes must be some of {', '.join(SCOPES)}, not {sorted(unknown) or 'none'}"
        raise ValueError(msg)
    entries = _read_entries(path)
    if any(e["id"] == new_id for e in entries):
        msg = f"{path}: a key named {new_id!r} exists (revoke it first)"
        raise ValueError(msg)
    key = new_key(new_id)
    _write_entries(path, [*entries, key_entry(key, sorted(set(scopes)))])
    return key


def revoke_key(path: Path, old_id: str) -> bool:
    """Remove the key named ``old_id`` from the key file; whether it was there."""
    entries = _read_entries(path)
    kept = [e for e in entries if e["id"] != old_id]
    if len(kept) == len(entries):
        return False
    _write_entries(path, kept)
    return True


def list_keys(path: Path) -> list[ApiKey]:
    """The keys of the key file (ids and scopes; digests only)."""
    return (
        list(parse_keys(path.read_text(encoding="utf-8"), str(path)).values())
        if path.exists()
        else []
    )
