"""Watches: the event history (the last 1000 events) and the watchers waiting for more.

Semantics are etcd's watcherHub/EventHistory: a watch from ``since_index``
first scans the history; a hit is answered at once, otherwise the watcher waits
for the first matching event with an index >= since_index. A watcher on a key
also fires when a directory above it is deleted or expires; a recursive
watcher does not see keys hidden ("_" names) below its path. A waiting watcher
holds at most 100 undelivered events; one more closes it, as in etcd.

The hub is pure bookkeeping; :meth:`Watcher.next` is the one awaitable, and it
must be awaited on the loop that applies commands (the store is not
thread-safe).
"""

from __future__ import annotations

import asyncio
from collections import deque
from itertools import islice

from store.v2.errors import EVENT_INDEX_CLEARED, EtcdError
from store.v2.event import DELETE, EXPIRE, Event
from store.v2.paths import clean

HISTORY_CAPACITY = 1000
WATCHER_BUFFER = 100


class EventHistory:
    """The last ``capacity`` events, whose indexes are consecutive."""

    __slots__ = ("events", "last_index", "start_index")

    def __init__(self, capacity: int = HISTORY_CAPACITY) -> None:
        self.events: deque[Event] = deque(maxlen=capacity)
        self.start_index = 0
        self.last_index = 0

    def add(self, e: Event) -> None:
        self.events.append(e)
        self.last_index = e.node.modified_index
        self.start_index = self.events[0].node.modified_index

    def scan(self, key: str, recursive: bool, index: int) -> Event | None:
        """The first event at or after ``index`` that a watch on ``key`` would see."""
        if index < self.start_index:
            raise EtcdError(
                EVENT_INDEX_CLEARED,
                f"the requested history has been cleared [{self.start_index}/{index}]",
            )
        if index > self.last_index:
            return None
        prefix = ""
        if recursive:
            prefix = clean(key)
            if not prefix.endswith("/"):
                prefix += "/"
        for e in islice(self.events, index - self.start_index, None):
            if e.refresh:
                continue
            k = e.node.key
            if k == key or (recursive and k.startswith(prefix)):
                return e
            prev = e.prev_node
            if (
                (e.action == DELETE or e.action == EXPIRE)
                and prev is not None
                and prev.dir
                and key.startswith(prev.key)
            ):
                return e
        return None


class Watcher:
    """One watch. ``start_index`` is the store index when it was made (X-Etcd-Index)."""

    __slots__ = (
        "_events",
        "_hub",
        "_key",
        "_last",
        "_waiter",
        "closed",
        "recursive",
        "since_index",
        "start_index",
        "stream",
    )

    def __init__(
        self,
        hub: WatcherHub | None,
        key: str,
        recursive: bool,
        stream: bool,
        since_index: int,
        start_index: int,
    ) -> None:
        self._hub = hub
        self._key = key
        self.recursive = recursive
        self.stream = stream
        self.since_index = since_index
        self.start_index = start_index
        self._events: deque[Event] = deque()
        self._last = 0  # index of the last event taken in: no duplicates
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False

    def pending(self) -> int:
        return len(self._events)

    def poll(self) -> Event | None:
        """The next event if one is waiting, without blocking."""
        return self._events.popleft() if self._events else None

    async def next(self) -> Event | None:
        """The next event; None once the watcher is closed and drained."""
        while not self._events:
            if self.closed:
                return None
            fut = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await fut
            finally:
                self._waiter = None
        return self._events.popleft()

    def remove(self) -> None:
        """Stop watching (idempotent); events already taken in stay readable."""
        if self._hub is not None:
            self._hub._unregister(self)
            self._hub = None
        self.closed = True
        self._wake()

    def _offer(self, e: Event) -> None:
        if e.node.modified_index == self._last:
            return
        self._last = e.node.modified_index
        if len(self._events) >= WATCHER_BUFFER:
            # The reader is too slow: drop the watcher, as etcd does.
            self.remove()
            return
        self._events.append(e)
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)


def is_hidden(watch_path: str, key_path: str) -> bool:
    """Whether ``key_path`` is hidden from a watcher on ``watch_path``."""
    if len(watch_path) > len(key_path):
        return False
    return "/_" in clean("/" + key_path[len(watch_path) :])


class WatcherHub:
    __slots__ = ("count", "history", "watchers")

    def __init__(self, capacity: int = HISTORY_CAPACITY) -> None:
        self.history = EventHistory(capacity)
        self.watchers: dict[str, dict[int, Watcher]] = {}
        self.count = 0

    def watch(
        self, key: str, recursive: bool, stream: bool, since_index: int, store_index: int
    ) -> Watcher:
        try:
            e = self.history.scan(key, recursive, since_index)
        except EtcdError as err:
            err.index = store_index
            raise
        if e is not None:
            w = Watcher(None, key, recursive, stream, since_index, store_index)
            w._offer(e.with_index(store_index))
            return w
        w = Watcher(self, key, recursive, stream, since_index, store_index)
        self.watchers.setdefault(key, {})[id(w)] = w
        self.count += 1
        return w

    def _unregister(self, w: Watcher) -> None:
        ws = self.watchers.get(w._key)
        if ws is not None and ws.pop(id(w), None) is not None:
            self.count -= 1
            if not ws:
                del self.watchers[w._key]

    def add(self, e: Event) -> None:
        """Record ``e`` without waking anybody (TTL refreshes)."""
        self.history.add(e)

    def notify(self, e: Event) -> None:
        """Record ``e`` and wake the watchers on its key and on every directory above."""
        self.history.add(e)
        if not self.watchers:
            return
        key = e.node.key
        self.notify_watchers(e, "/", False)
        i = key.find("/", 1)
        while i != -1:
            self.notify_watchers(e, key[:i], False)
            i = key.find("/", i + 1)
        if len(key) > 1:
            self.notify_watchers(e, key, False)

    def notify_watchers(self, e: Event, path: str, deleted: bool) -> None:
        ws = self.watchers.get(path)
        if not ws:
            return
        original = e.node.key == path
        if not original and is_hidden(path, e.node.key):
            return
        index = e.node.modified_index
        for w in list(ws.values()):
            if (w.recursive or original or deleted) and index >= w.since_index:
                w._offer(e)
                if not w.stream:
                    w.remove()

    def adopt(self, other: WatcherHub) -> None:
        """Take over every waiting watcher of ``other``."""
        for key, ws in other.watchers.items():
            mine = self.watchers.setdefault(key, {})
            for wid, w in ws.items():
                w._hub = self
                mine[wid] = w
                self.count += 1
        other.watchers = {}
        other.count = 0

    def close_all(self) -> None:
        """End every watch (the store they watch is being replaced)."""
        for ws in list(self.watchers.values()):
            for w in list(ws.values()):
                w.remove()
