"""The conference lookup cache: TTL, negative answers, LRU bound, invalidation."""

from __future__ import annotations

from focus.conference import ConferenceInfo, ConferencePolicy
from focus.directory import ConferenceDirectoryCache


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[str, ConferenceInfo] = {}
        self.queries = 0

    def get_conference(self, name: str) -> ConferenceInfo | None:
        self.queries += 1
        return self.rows.get(name)


def info(name: str) -> ConferenceInfo:
    return ConferenceInfo(1, name, None, ConferencePolicy())


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_answers_are_cached_for_ttl_seconds_including_not_found() -> None:
    store, clock = FakeStore(), Clock()
    cache = ConferenceDirectoryCache(store, ttl=1.0, clock=clock)
    assert cache.get_conference("retro") is None
    store.rows["retro"] = info("retro")
    assert cache.get_conference("retro") is None  # negative answer still fresh
    assert store.queries == 1
    clock.now += 1.01
    assert cache.get_conference("retro") == info("retro")
    assert cache.get_conference("retro") == info("retro")
    assert store.queries == 2 and (cache.hits, cache.misses) == (2, 2)


def test_invalidate_forces_a_fresh_lookup() -> None:
    store = FakeStore()
    cache = ConferenceDirectoryCache(store, ttl=60.0, clock=Clock())
    assert cache.get_conference("a") is None
    store.rows["a"] = info("a")
    cache.invalidate("a")
    assert cache.get_conference("a") == info("a")
    cache.invalidate()
    del store.rows["a"]
    assert cache.get_conference("a") is None


def test_bounded_by_max_entries_lru() -> None:
    store = FakeStore()
    cache = ConferenceDirectoryCache(store, ttl=60.0, max_entries=3, clock=Clock())
    for name in ("a", "b", "c"):
        cache.get_conference(name)
    cache.get_conference("a")  # a is now the most recent
    cache.get_conference("d")  # evicts b
    queries = store.queries
    cache.get_conference("a")
    assert store.queries == queries
    cache.get_conference("b")
    assert store.queries == queries + 1
