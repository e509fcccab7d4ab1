"""A short-lived cache in front of the conference store for the SIP hot path.

Every dial-in looks its conference up; a database round trip per INVITE costs
more than the rest of the call set-up.  The cache keeps each answer (a found
conference *or* "no such conference", so a flood of INVITEs to unknown names
does not reach the database either) for ``ttl`` seconds.  Changes made inside
the process call :meth:`ConferenceDirectoryCache.invalidate`; changes made by
another process (``mrf conference create`` while the server runs) are seen
after at most ``ttl`` seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from focus.conference import ConferenceInfo


class ConferenceLookup(Protocol):
    def get_conference(self, name: str) -> ConferenceInfo | None: ...


class ConferenceDirectoryCache:
    """``get_conference`` with a TTL and an LRU bound (``max_entries``)."""

    def __init__(
        self,
        store: ConferenceLookup,
        *,
        ttl: float = 1.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, ConferenceInfo | None]] = OrderedDict()
        self.hits = self.misses = 0

    def get_conference(self, name: str) -> ConferenceInfo | None:
        now = self._clock()
        entry = self._entries.get(name)
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(name)
            self.hits += 1
            return entry[1]
        self.misses += 1
        conference = self.store.get_conference(name)
        self._entries[name] = (now + self.ttl, conference)
        self._entries.move_to_end(name)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return conference

    def invalidate(self, name: str | None = None) -> None:
        """Forget ``name`` (or everything) after a change made in this process."""
        if name is None:
            self._entries.clear()
        else:
            self._entries.pop(name, None)
