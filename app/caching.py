"""Search results and answers kept in a cache as JSON."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pydantic

from retrieval.caches.base import Cache, cache_key

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=pydantic.BaseModel)

SEARCH_NAMESPACE = "search"


class ResultCache:
    """Pydantic models by namespace and key parts; ``search`` entries live ``search_ttl_s``,
    every other namespace (answers) ``answer_ttl_s``.

    The caller's ``parts`` must hold everything that changes the result: the exact inputs,
    the configuration and the catalog version.
    """

    def __init__(self, cache: Cache, *, search_ttl_s: float, answer_ttl_s: float) -> None:
        self.cache = cache
        self.search_ttl_s = search_ttl_s
        self.answer_ttl_s = answer_ttl_s

    def ttl_s(self, namespace: str) -> float:
        """How long entries of ``namespace`` (``search`` or ``user:<id>:search`` …) live."""
        last = namespace.rsplit(":", 1)[-1]
        return self.search_ttl_s if last == SEARCH_NAMESPACE else self.answer_ttl_s

    def get_or_compute(
        self,
        namespace: str,
        parts: Mapping[str, Any],
        compute: Callable[[], M],
        *,
        model: type[M],
        bypass: bool = False,
    ) -> tuple[M, bool]:
        """(the cached value, True), or (``compute()``, False) after storing it.

        With ``bypass`` the cache is neither read nor written. An entry that no longer
        validates against ``model`` (a schema change) reads as a miss and is replaced.
        """
        if bypass:
            return compute(), False
        key = cache_key(namespace, **parts)
        raw = self.cache.get(key)
        if raw is not None:
            try:
                return model.model_validate_json(raw), True
            except pydantic.ValidationError:
                logger.info("dropping a cached %s that no longer validates", model.__name__)
        value = compute()
        self.cache.set(key, value.model_dump_json().encode(), self.ttl_s(namespace))
        return value, False
