"""Pages of a ranked list, the same way for every recommendation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def check_page(page: int, size: int) -> None:
    """`ValueError` unless both are at least 1."""
    if page < 1 or size < 1:
        msg = f"page and size must be at least 1, got page={page}, size={size}"
        raise ValueError(msg)


def page_of(items: Sequence[T], page: int, size: int) -> list[T]:
    """Items ``(page - 1) * size`` up to ``page * size`` (1-based pages)."""
    return list(items[(page - 1) * size : page * size])
