"""A small cache of what jobs can share: the service runs many jobs in one process."""

from __future__ import annotations

from typing import Callable


class RecentCache:
    """Values kept between jobs (the service runs many jobs in one process), by key; holds the
    `capacity` most recently used."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: dict[tuple, object] = {}
        self.hits = 0

    def get(self, key: tuple, compute: Callable[[], object]):
        if key in self._entries:
            self.hits += 1
            self._entries[key] = self._entries.pop(key)  # most recent last
        else:
            self._entries[key] = compute()
            while len(self._entries) > self.capacity:
                self._entries.pop(next(iter(self._entries)))
        return self._entries[key]

    def clear(self) -> None:
        self._entries.clear()
