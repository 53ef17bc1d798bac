from collections.abc import Sequence

import numpy as np

from retrieval.caches.memory import MemoryCache
from retrieval.embedders.cached import CachedEmbedder
from retrieval.embedders.hashing import HashingEmbedder


class CountingEmbedder(HashingEmbedder):
    def __init__(self, dim: int = 32) -> None:
        super().__init__(dim)
        self.queries = 0
        self.documents = 0

    def embed_query(self, text: str) -> np.ndarray:
        self.queries += 1
        return super().embed_query(text)

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.documents += 1
        return super().embed_documents(texts, progress=progress)


class TestCachedEmbedder:
    def test_second_query_hits_the_cache(self) -> None:
        inner, cache = CountingEmbedder(), MemoryCache()
        embedder = CachedEmbedder(inner, cache)
        first = embedder.embed_query("wireless headphones")
        second = embedder.embed_query("wireless headphones")
        assert inner.queries == 1
        assert second.dtype == np.float32
        assert second.shape == (inner.dim,)
        np.testing.assert_array_equal(first, second)
        second[0] = 5.0  # a cached vector is the caller's own copy
        assert embedder.embed_query("wireless headphones")[0] != 5.0
        assert cache.stats().hits == 2

    def test_different_text_misses(self) -> None:
        inner = CountingEmbedder()
        embedder = CachedEmbedder(inner, MemoryCache())
        embedder.embed_query("headphones")
        embedder.embed_query("Headphones")  # the model sees the exact text
        embedder.embed_query("earbuds")
        assert inner.queries == 3

    def test_models_do_not_share_entries(self) -> None:
        cache = MemoryCache()
        small, large = CountingEmbedder(16), CountingEmbedder(32)
        CachedEmbedder(small, cache).embed_query("tv")
        assert CachedEmbedder(large, cache).embed_query("tv").shape == (32,)
        assert large.queries == 1

    def test_wrong_length_entry_is_a_miss(self) -> None:
        cache = MemoryCache()
        inner = CountingEmbedder()
        embedder = CachedEmbedder(inner, cache)
        embedder.embed_query("tv")
        for key in list(cache._entries):
            cache.set(key, b"\x00" * 8, 60)
        vector = embedder.embed_query("tv")
        assert inner.queries == 2
        np.testing.assert_allclose(vector, inner.embed_query("tv"))

    def test_documents_and_properties_delegate(self) -> None:
        inner, cache = CountingEmbedder(), MemoryCache()
        embedder = CachedEmbedder(inner, cache, ttl_s=10)
        embedder.warm_up()
        rows = embedder.embed_documents(["a", "b"])
        assert rows.shape == (2, inner.dim)
        assert inner.documents == 1
        assert len(cache) == 0
        assert embedder.name == inner.name
        assert embedder.dim == inner.dim
