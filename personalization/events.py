"""What a shopper did: the events a profile is built from, and how much each one counts."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

EventType = Literal["view", "click", "cart", "purchase", "search"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

# How much one event moves a profile. A search is kept with its query but moves nothing: it
# has no product.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "cart": 3.0,
    "purchase": 5.0,
    "search": 0.0,
}
# The events that show intent to buy (an explanation says "you often buy").
BUY_EVENTS = frozenset({"cart", "purchase"})

# No ':' and no '/', so a user id can end a Redis key and never becomes a path.
USER_ID_PATTERN = r"^[A-Za-z0-9_.@-]{1,128}$"
EVENT_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
MAX_PRODUCT_ID = 256  # as `Product.id`
MAX_QUERY = 1_000

_USER_ID = re.compile(USER_ID_PATTERN)
_EVENT_ID = re.compile(EVENT_ID_PATTERN)


MAX_CLOCK_SKEW_S = 86_400.0  # the largest clock-skew allowance; a profile dated later is repaired


def hashed_user(user_id: str) -> str:
    """A user id as logs show it: the first 16 hex digits of its sha256."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def iso_time(at: float) -> str:
    """Epoch seconds as an ISO 8601 UTC time, to the second (beyond the calendar's year
    9999: the seconds themselves)."""
    try:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return f"{at:g} epoch seconds"


@dataclass(frozen=True)
class EventWindow:
    """The event times a profile accepts: no later than now plus ``clock_skew_s`` (a phone's
    clock a little ahead), no earlier than ``retention_s`` ago (what the profile forgets)."""

    clock_skew_s: float = 300.0
    retention_s: float = 180 * 86_400.0

    def __post_init__(self) -> None:
        if not 0 <= self.clock_skew_s <= MAX_CLOCK_SKEW_S or self.retention_s <= 0:
            msg = (
                f"the clock-skew allowance is 0 to {MAX_CLOCK_SKEW_S:g} s and the retention "
                "positive"
            )
            raise ValueError(msg)

    def refusal(self, at: float, now: float) -> str | None:
        """Why an event at ``at`` is refused at ``now``, or None when it is accepted."""
        if at > now + self.clock_skew_s:
            return (
                f"in the future: {iso_time(at)} is later than the server's time "
                f"{iso_time(now)} plus the {self.clock_skew_s:g} s clock-skew allowance"
            )
        if at < now - self.retention_s:
            days = self.retention_s / 86_400.0
            return f"older than the profile retention ({days:g} days): {iso_time(at)}"
        return None


def check_user_id(user_id: str) -> str:
    """``user_id`` itself, or `ValueError` when it does not match `USER_ID_PATTERN`."""
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        msg = f"invalid user id {user_id!r}: expected {USER_ID_PATTERN}"
        raise ValueError(msg)
    return user_id


@dataclass(frozen=True)
class Event:
    """One thing a shopper did, at ``at`` (epoch seconds). Invalid fields are a `ValueError`."""

    event_id: str
    user_id: str
    type: EventType
    at: float
    product_id: str | None = None
    query: str | None = None

    def __post_init__(self) -> None:
        check_user_id(self.user_id)
        if not isinstance(self.event_id, str) or not _EVENT_ID.fullmatch(self.event_id):
            msg = f"invalid event id {self.event_id!r}: expected {EVENT_ID_PATTERN}"
            raise ValueError(msg)
        if self.type not in EVENT_TYPES:
            msg = f"unknown event type {self.type!r}: expected one of {', '.join(EVENT_TYPES)}"
            raise ValueError(msg)
        if isinstance(self.at, bool) or not isinstance(self.at, int | float):
            msg = f"event time must be a number of epoch seconds, got {self.at!r}"
            raise ValueError(msg)
        if not math.isfinite(self.at) or self.at < 0:
            msg = f"event time must be finite and not negative, got {self.at!r}"
            raise ValueError(msg)
        if self.product_id is not None and not 0 < len(self.product_id) <= MAX_PRODUCT_ID:
            msg = f"a product id has 1 to {MAX_PRODUCT_ID} characters"
            raise ValueError(msg)
        if self.query is not None and len(self.query) > MAX_QUERY:
            msg = f"a query has at most {MAX_QUERY} characters"
            raise ValueError(msg)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form (fields left None are omitted)."""
        data: dict[str, Any] = {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "type": self.type,
            "at": float(self.at),
        }
        if self.product_id is not None:
            data["product_id"] = self.product_id
        if self.query is not None:
            data["query"] = self.query
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """The event ``to_dict`` gave (`ValueError` when a field is missing or invalid)."""
        try:
            return cls(
                event_id=data["event_id"],
                user_id=data["user_id"],
                type=cast(EventType, data["type"]),
                at=float(data["at"]),
                product_id=data.get("product_id"),
                query=data.get("query"),
            )
        except (KeyError, TypeError) as exc:
            msg = f"not an event: {exc}"
            raise ValueError(msg) from exc
