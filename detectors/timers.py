"""Bounded timer structures for the engine.

`TimerQueue` keeps **one** pending deadline per key: setting a key's deadline
replaces the previous one. It is a binary heap with lazy deletion; stale
entries are dropped when they reach the top and the heap is rebuilt from the
live deadlines whenever stale entries outnumber live ones, so its length stays
below ``2 x keys + 64`` however many times deadlines move (the earlier engine
pushed a new entry for every event and grew with traffic).

`LastSeen` is the offline timer of every device, in receive time: a device's
"no message for N seconds" deadline moves with every message, so it is not a
heap entry at all but a position in an insertion-ordered dict (``move_to_end``
per message, O(1)), one dict per distinct limit; the expired devices are at the
front.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Hashable, Iterator

SLACK = 64


class TimerQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, Hashable]] = []
        self._due: dict[Hashable, float] = {}

    def set(self, key: Hashable, due: float | None) -> None:
        """Replace ``key``'s deadline (None: no deadline)."""
        if due is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, key))
        if len(self._heap) > 2 * len(self._due) + SLACK:
            self._heap = [(d, k) for k, d in self._due.items()]
            heapq.heapify(self._heap)

    def get(self, key: Hashable) -> float | None:
        return self._due.get(key)

    def pop_due(self, now: float) -> Iterator[tuple[Hashable, float]]:
        """Remove and yield every (key, deadline) due at or before ``now``, earliest first."""
        heap, live = self._heap, self._due
        while heap and heap[0][0] <= now:
            due, key = heapq.heappop(heap)
            if live.get(key) == due:
                del live[key]
                yield key, due

    def peek(self) -> float | None:
        heap, live = self._heap, self._due
        while heap and live.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return len(self._due)

    @property
    def entries(self) -> int:
        """Heap entries, stale ones included (what the memory bound is about)."""
        return len(self._heap)


class LastSeen:
    """Receive time of every device's latest message, grouped by the device's offline limit."""

    def __init__(self) -> None:
        self._groups: dict[float, OrderedDict[str, float]] = {}
        self._limit: dict[str, float] = {}

    def touch(self, device_id: str, received: float, limit: float) -> None:
        old = self._limit.get(device_id)
        if old is not None and old != limit:
            self._groups[old].pop(device_id, None)
        self._limit[device_id] = limit
        group = self._groups.get(limit)
        if group is None:
            group = self._groups[limit] = OrderedDict()
        group[device_id] = received
        group.move_to_end(device_id)

    def forget(self, device_id: str) -> None:
        limit = self._limit.pop(device_id, None)
        if limit is not None:
            self._groups[limit].pop(device_id, None)

    def expired(self, now: float) -> Iterator[tuple[str, float, float]]:
        """Remove and yield (device, last receive time, limit) for every device silent for
        longer than its limit. Messages arrive in receive order, so each group is ordered by
        receive time and the scan stops at the first device still within its limit."""
        for limit, group in self._groups.items():
            while group:
                device_id, received = next(iter(group.items()))
                if received + limit > now:
                    break
                del group[device_id]
                del self._limit[device_id]
                yield device_id, received, limit

    def __len__(self) -> int:
        return len(self._limit)
