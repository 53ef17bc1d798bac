import threading
import time

import pytest

from retrieval.caches.base import CacheStats, cache_key, key_prefix, normalize_query
from retrieval.caches.memory import MemoryCache


class TestMemoryCache:
    def test_get_set_and_stats(self) -> None:
        cache = MemoryCache()
        assert cache.get("k") is None
        cache.set("k", b"v", 60)
        assert cache.get("k") == b"v"
        assert cache.stats() == CacheStats("memory", hits=1, misses=1, errors=0, available=True)

    def test_entries_expire(self) -> None:
        cache = MemoryCache()
        cache.set("short", b"1", 0.01)
        cache.set("long", b"2", 60)
        time.sleep(0.03)
        assert cache.get("short") is None
        assert cache.get("long") == b"2"
        assert len(cache) == 1

    def test_non_positive_ttl_stores_nothing(self) -> None:
        cache = MemoryCache()
        cache.set("k", b"v", 60)
        cache.set("k", b"w", 0)
        assert cache.get("k") is None

    def test_least_recently_used_is_evicted(self) -> None:
        cache = MemoryCache(max_entries=2)
        cache.set("a", b"1", 60)
        cache.set("b", b"2", 60)
        assert cache.get("a") == b"1"  # now "b" is the least recently used
        cache.set("c", b"3", 60)
        assert cache.get("b") is None
        assert cache.get("a") == b"1"
        assert cache.get("c") == b"3"

    def test_setting_again_replaces_and_refreshes(self) -> None:
        cache = MemoryCache(max_entries=2)
        cache.set("a", b"1", 60)
        cache.set("b", b"2", 60)
        cache.set("a", b"new", 60)
        cache.set("c", b"3", 60)
        assert cache.get("a") == b"new"
        assert cache.get("b") is None

    def test_delete_prefix(self) -> None:
        cache = MemoryCache()
        for key in ("shopguide:u:1:a", "shopguide:u:1:b", "shopguide:u:2:a"):
            cache.set(key, b"x", 60)
        assert cache.delete_prefix("shopguide:u:1:") == 2
        assert cache.get("shopguide:u:2:a") == b"x"
        with pytest.raises(ValueError, match="empty prefix"):
            cache.delete_prefix("")

    def test_threads(self) -> None:
        cache = MemoryCache(max_entries=50)

        def work(n: int) -> None:
            for i in range(200):
                cache.set(f"{n}:{i}", b"x", 60)
                cache.get(f"{n}:{i - 1}")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(cache) == 50
        stats = cache.stats()
        assert stats.hits + stats.misses == 800

    def test_bad_size(self) -> None:
        with pytest.raises(ValueError, match="max_entries"):
            MemoryCache(max_entries=0)


class TestCacheKey:
    def test_prefix_and_stability(self) -> None:
        key = cache_key("search", text="tv", page=1)
        assert key.startswith("shopguide:search:")
        assert key.startswith(key_prefix("search"))
        assert len(key) == len("shopguide:search:") + 64
        assert key == cache_key("search", page=1, text="tv")

    def test_mapping_order_does_not_matter(self) -> None:
        one = {"brands": ["Sony"], "price_max": 100.0, "in_stock": True}
        two = {"in_stock": True, "price_max": 100.0, "brands": ["Sony"]}
        assert cache_key("search", filters=one) == cache_key("search", filters=two)

    def test_floats_are_normalised(self) -> None:
        assert cache_key("s", price=100.0) == cache_key("s", price=100)
        assert cache_key("s", price=-0.0) == cache_key("s", price=0)
        assert cache_key("s", price=99.5) != cache_key("s", price=99.0)
        assert cache_key("s", x=(1, 2)) == cache_key("s", x=[1, 2])
        assert cache_key("s", x={"b", "a"}) == cache_key("s", x={"a", "b"})

    def test_bool_is_not_int(self) -> None:
        assert cache_key("s", rerank=True) != cache_key("s", rerank=1)

    @pytest.mark.parametrize(
        "change",
        [
            {"filters": {"brands": ["Anker"], "price_max": 100}},
            {"filters": {"brands": ["Sony"], "price_max": 200}},
            {"filters": None},
            {"page": 2},
            {"size": 20},
            {"rerank": False},
            {"text": "tvs"},
            {"catalog": "v2"},
            {"config": {"prompt": "2", "llm": "m"}},
        ],
    )
    def test_every_input_changes_the_key(self, change: dict[str, object]) -> None:
        base: dict[str, object] = {
            "text": "tv",
            "filters": {"brands": ["Sony"], "price_max": 100},
            "page": 1,
            "size": 10,
            "rerank": True,
            "catalog": "v1",
            "config": {"prompt": "1", "llm": "m"},
        }
        assert cache_key("search", **base) != cache_key("search", **{**base, **change})

    def test_namespace_changes_the_key(self) -> None:
        assert cache_key("search", text="tv") != cache_key("advice", text="tv")

    def test_unsupported_values(self) -> None:
        with pytest.raises(TypeError):
            cache_key("s", x=object())
        with pytest.raises(TypeError, match="string mapping keys"):
            cache_key("s", x={1: "a"})
        with pytest.raises(ValueError, match="namespace"):
            cache_key("", x=1)


class TestNormalizeQuery:
    def test_case_width_and_spaces(self) -> None:
        assert normalize_query("  Noise   Cancelling\tHEADPHONES ") == "noise cancelling headphones"
        assert normalize_query("ＳＯＮＹ　耳机") == "sony 耳机"
        assert normalize_query("Straße") == normalize_query("STRASSE")
