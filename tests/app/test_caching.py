import pydantic

from app.caching import ResultCache
from retrieval.caches.memory import MemoryCache


class Result(pydantic.BaseModel):
    text: str
    scores: list[float]


class Other(pydantic.BaseModel):
    count: int


class Computer:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Result:
        self.calls += 1
        return Result(text=f"call {self.calls}", scores=[0.5, 0.25])


def results() -> ResultCache:
    return ResultCache(MemoryCache(), search_ttl_s=60, answer_ttl_s=600)


class TestResultCache:
    def test_second_call_is_a_hit(self) -> None:
        cache, compute = results(), Computer()
        parts = {"text": "tv", "page": 1, "catalog": "v1"}
        first, hit = cache.get_or_compute("search", parts, compute, model=Result)
        assert not hit
        second, hit = cache.get_or_compute("search", parts, compute, model=Result)
        assert hit
        assert second == first
        assert compute.calls == 1

    def test_bypass_neither_reads_nor_writes(self) -> None:
        cache, compute = results(), Computer()
        parts = {"text": "tv"}
        cache.get_or_compute("search", parts, compute, model=Result)
        value, hit = cache.get_or_compute("search", parts, compute, model=Result, bypass=True)
        assert (value.text, hit) == ("call 2", False)
        memory = MemoryCache()
        fresh = ResultCache(memory, search_ttl_s=60, answer_ttl_s=60)
        fresh.get_or_compute("search", parts, compute, model=Result, bypass=True)
        assert len(memory) == 0

    def test_different_parts_or_namespace_miss(self) -> None:
        cache, compute = results(), Computer()
        base = {"text": "tv", "filters": {"price_max": 100}, "page": 1, "catalog": "v1"}
        cache.get_or_compute("search", base, compute, model=Result)
        for parts in (
            {**base, "page": 2},
            {**base, "filters": {"price_max": 200}},
            {**base, "catalog": "v2"},
        ):
            assert not cache.get_or_compute("search", parts, compute, model=Result)[1]
        assert not cache.get_or_compute("advice", base, compute, model=Result)[1]
        assert compute.calls == 5
        assert cache.get_or_compute("search", dict(reversed(base.items())), compute, model=Result)[
            1
        ]

    def test_an_entry_that_no_longer_validates_is_replaced(self) -> None:
        cache = results()
        cache.get_or_compute("search", {"q": 1}, lambda: Other(count=3), model=Other)
        value, hit = cache.get_or_compute("search", {"q": 1}, Computer(), model=Result)
        assert (value.text, hit) == ("call 1", False)
        assert cache.get_or_compute("search", {"q": 1}, Computer(), model=Result)[1]

    def test_ttl_by_namespace(self) -> None:
        cache = results()
        assert cache.ttl_s("search") == 60
        assert cache.ttl_s("advice") == cache.ttl_s("ask") == 600
