"""A least-recently-used store bounded by entries and by bytes: the one memory bound of the
door's process-wide stores (the shared DNS answers, probes.net.answer_cache; the recorded
conversations, probes.net.tapes). Not thread-safe: its owner holds its own lock."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class SizedLru(Generic[V]):
    """Values by key with their sizes; beyond `max_entries` values or `max_bytes` bytes, the
    least recently used go first (`evictions` counts them)."""

    def __init__(self, *, max_bytes: int, max_entries: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.size = 0  # bytes held, as the sizes given to put()
        self.evictions = 0
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> V | None:
        """The value of `key` (now the most recently used), or None."""
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: Hashable, value: V, size: int) -> None:
        """Keep `value` (replacing what `key` had), then evict down to the bounds."""
        self.pop(key)
        self._items[key] = (value, size)
        self.size += size
        while self._items and (
            self.size > self.max_bytes
            or (self.max_entries is not None and len(self._items) > self.max_entries)
        ):
            _, (_, dropped) = self._items.popitem(last=False)
            self.size -= dropped
            self.evictions += 1

    def pop(self, key: Hashable) -> V | None:
        """Forget `key` (not an eviction); its value, or None."""
        found = self._items.pop(key, None)
        if found is None:
            return None
        self.size -= found[1]
        return found[0]

    def values(self) -> list[V]:
        return [value for value, _ in self._items.values()]

    def clear(self) -> None:
        self._items.clear()
        self.size = 0
