"""Small builders shared by the personalization tests."""

from __future__ import annotations

import itertools

from personalization.events import Event, EventType
from retrieval.schema import Product

DAY = 86_400.0
HALF_LIFE = 30 * DAY
T0 = 1_700_000_000.0

_ids = itertools.count(1)


def product(
    pid: str,
    brand: str | None = None,
    category: str | None = None,
    price: float | None = None,
    title: str | None = None,
) -> Product:
    return Product(
        id=pid, title=title or f"Product {pid}", brand=brand, category=category, price=price
    )


def event(
    kind: EventType,
    product_id: str | None = None,
    *,
    at: float = T0,
    user: str = "u1",
    event_id: str | None = None,
    query: str | None = None,
) -> Event:
    return Event(
        event_id=event_id or f"e{next(_ids)}",
        user_id=user,
        type=kind,
        at=at,
        product_id=product_id,
        query=query,
    )
