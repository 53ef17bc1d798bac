"""Error translation: client exceptions and error objects of Elasticsearch answers become
`StoreUnavailable` (the server unreachable, timing out or answering 429/503, naming the URL) or
`StoreError` (anything else Elasticsearch refuses, with its reason)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from elasticsearch import ApiError, TransportError
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout as ESConnectionTimeout

from retrieval.stores.base import StoreError, StoreUnavailable


class BreakerOpen(StoreUnavailable):
    """Elasticsearch failed lately, so the store's circuit breaker is open: not called for
    ``retry_after_s`` (the API's Retry-After)."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def reason(error: Any) -> str:
    """The most specific reason in an Elasticsearch error object (or the first of a list)."""
    if isinstance(error, list) and error:
        error = error[0].get("reason", error[0]) if isinstance(error[0], Mapping) else error[0]
    if isinstance(error, Mapping):
        causes = error.get("caused_by") or (error.get("root_cause") or [None])[0]
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
        if isinstance(causes, Mapping) and causes.get("reason") != error.get("reason"):
            text += f" ({reason(causes)})"
        return text
    return str(error)


def api_reason(exc: ApiError) -> str:
    """The reason of a refused request."""
    body = exc.body
    if isinstance(body, Mapping) and "error" in body:
        return reason(body["error"])
    return str(exc.message)


@contextmanager
def translated(url: str, action: str) -> Iterator[None]:
    """Translate client errors into `StoreUnavailable` / `StoreError`."""
    try:
        yield
    except StoreError:
        raise
    except (ESConnectionError, ESConnectionTimeout) as exc:
        msg = f"Elasticsearch at {url} cannot be reached ({action}): {exc}"
        raise StoreUnavailable(msg) from exc
    except ApiError as exc:
        why = api_reason(exc)
        if exc.meta.status in (429, 503):
            msg = f"Elasticsearch at {url} is unavailable ({action}): {why}"
            raise StoreUnavailable(msg) from exc
        msg = f"Elasticsearch could not {action}: {why}"
        raise StoreError(msg) from exc
    except TransportError as exc:
        msg = f"Elasticsearch at {url} could not {action}: {exc}"
        raise StoreError(msg) from exc


class RetryableSearch(Exception):
    """A search hit an index that went away under it (a concurrent alias swap), or a shard
    that cannot serve yet (``unavailable``: a node starting, its shards recovering)."""

    def __init__(self, reason: str, *, unavailable: bool = False) -> None:
        super().__init__(reason)
        self.unavailable = unavailable


def search_hits(item: Mapping[str, Any], url: str) -> list[dict[str, Any]]:
    """The hits of one ``_msearch`` answer; its error raised as `RetryableSearch` (index gone,
    shards not serving), `StoreUnavailable` (429/503) or `StoreError`."""
    error = item.get("error")
    if error is not None:
        why = reason(error)
        status = int(item.get("status", 500))
        unavailable = status in (429, 503) or "no_shard_available" in why
        if status == 404 or "index_not_found" in why or "no_shard_available" in why:
            raise RetryableSearch(why, unavailable=unavailable)
        if status in (429, 503):
            msg = f"Elasticsearch at {url} is unavailable (search): {why}"
            raise StoreUnavailable(msg)
        msg = f"Elasticsearch could not search: {why}"
        raise StoreError(msg)
    shards = item.get("_shards")
    if shards and shards.get("failed"):
        why = reason(shards.get("failures"))
        raise RetryableSearch(why, unavailable="no_shard_available" in why)
    hits = item.get("hits")  # left out by a ``filter_path`` when there are none
    return list(hits.get("hits", ())) if hits else []


def retry_failed(exc: RetryableSearch, url: str) -> StoreError:
    """What a search that failed twice raises: still not serving is `StoreUnavailable` (503),
    anything else `StoreError`."""
    if exc.unavailable:
        return StoreUnavailable(f"Elasticsearch at {url} is unavailable (search): {exc}")
    return StoreError(f"Elasticsearch could not search: {exc}")
