"""The etcd v2 keys state machine: pure, deterministic, no I/O and no clock.

Every replica applies the same commands in the same order and ends in the same
state: "now" is the proposer's clock carried by each command, never the local
clock. Semantics follow etcd 3.4's v2store call by call (Set, Create, Update,
CompareAndSwap, Delete, CompareAndDelete, DeleteExpiredKeys, Get, Watch),
including its index rules: every successful mutation bumps the index by one,
failures do not, and errors carry the index at the time.
"""

from __future__ import annotations

from operator import attrgetter

from store.v2 import snapshot as _snapshot
from store.v2.command import Command
from store.v2.errors import (
    DIR_NOT_EMPTY,
    KEY_NOT_FOUND,
    NODE_EXIST,
    NOT_DIR,
    NOT_FILE,
    ROOT_READ_ONLY,
    TEST_FAILED,
    EtcdError,
)
from store.v2.event import (
    COMPARE_AND_DELETE,
    COMPARE_AND_SWAP,
    CREATE,
    DELETE,
    EXPIRE,
    GET,
    SET,
    UPDATE,
    Event,
    NodeView,
)
from store.v2.paths import clean, join, split
from store.v2.stats import EXPIRE as EXPIRE_COUNT
from store.v2.stats import OP_FIELDS, StoreStats
from store.v2.tree import Node, TTLQueue
from store.v2.watch import Watcher, WatcherHub

__all__ = ["Event", "NodeView", "V2Store"]

# Expiry times before 2000-01-01 mean "permanent" (etcd's minExpireTime).
MIN_EXPIRE_US = 946_684_800_000_000


def to_us(t: float) -> int:
    """UNIX seconds to integer microseconds (the store's time unit)."""
    return round(t * 1_000_000)


def ttl_left(expire_us: int, now_us: int) -> int:
    """Seconds left, rounded up, with Go's truncating division (etcd's formula)."""
    d = expire_us - now_us
    q, r = divmod(abs(d), 1_000_000)
    if d < 0:
        q, r = -q, -r
    return q + 1 if r > 0 else q


_by_key = attrgetter("key")


class V2Store:
    """The tree of keys, the etcd index, TTLs, the watch history and the stats."""

    def __init__(self) -> None:
        self.root = Node("", 0, 0, 0, "", {}, None)
        self.index = 0  # the etcd index: X-Etcd-Index
        self.now_us = 0  # the time of the last command applied
        self.stats = StoreStats()
        self.hub = WatcherHub()
        self.ttl = TTLQueue()
        self._ops = {
            "set": self._set,
            "create": self._create_cmd,
            "post": self._post,
            "update": self._update,
            "cas": self._cas,
            "delete": self._delete,
            "cad": self._cad,
        }

    # ---- applying commands ------------------------------------------------

    def apply(self, cmd: Command) -> Event | EtcdError | None:
        """Apply one command: its event, or the error (returned, not raised).

        "sync" answers None: its expiries are events for watchers, not an answer.
        """
        if cmd.time:
            self.now_us = to_us(cmd.time)
        if cmd.op == "sync":
            self.expire(self.now_us)
            return None
        op = self._ops.get(cmd.op)
        if op is None:
            return EtcdError.raft_internal("etcdserver: unknown method", self.index)
        ok, fail = OP_FIELDS[cmd.op]
        try:
            e = op(cmd)
        except EtcdError as err:
            self.stats.writes[fail] += 1
            return err
        self.stats.writes[ok] += 1
        return e

    def _expire_us(self, cmd: Command) -> int:
        return 0 if cmd.expiration is None else to_us(cmd.expiration)

    def _set(self, cmd: Command) -> Event:
        path = clean(cmd.path)
        try:
            prev: Node | None = self._lookup(path)
        except EtcdError as err:
            if err.code != KEY_NOT_FOUND or cmd.refresh:  # a refresh needs the key
                raise
            prev = None
        value = prev.value if cmd.refresh and prev is not None else cmd.value
        e = self._create(path, cmd.dir, value, True, self._expire_us(cmd), SET)
        self._announce(e, cmd.refresh)
        return e

    def _create_cmd(self, cmd: Command) -> Event:
        e = self._create(clean(cmd.path), cmd.dir, cmd.value, False, self._expire_us(cmd), CREATE)
        self.hub.notify(e)
        return e

    def _post(self, cmd: Command) -> Event:
        path = clean(cmd.path)
        path = join(path, f"{self.index + 1:020d}")
        e = self._create(path, cmd.dir, cmd.value, False, self._expire_us(cmd), CREATE)
        self.hub.notify(e)
        return e

    def _create(
        self, path: str, is_dir: bool, value: str, replace: bool, expire_us: int, action: str
    ) -> Event:
        """etcd's internalCreate (an in-order key's name is made by the caller)."""
        index = self.index
        nxt = index + 1
        if path == "/":
            raise EtcdError(ROOT_READ_ONLY, "/", index)
        if expire_us < MIN_EXPIRE_US:
            expire_us = 0
        dir_path, name = split(path)
        parent = self._make_dirs(dir_path, nxt)
        children = parent.children
        assert children is not None
        prev_view = None
        existing = children.get(name)
        if existing is not None:
            if not replace:
                raise EtcdError(NODE_EXIST, path, index)
            if existing.children is not None:
                raise EtcdError(NOT_FILE, path, index)
            prev_view = self._view(existing)
            self._unlink(existing)
        if is_dir:
            n = Node(name, nxt, nxt, expire_us, "", {}, parent)
            view = NodeView(path, None, True, None, 0, None, nxt, nxt)
        else:
            n = Node(name, nxt, nxt, expire_us, value, None, parent)
            view = NodeView(path, value, False, None, 0, None, nxt, nxt)
        children[name] = n
        if expire_us:
            self.ttl.push(n)
            view.expiration_us = expire_us
            view.ttl = ttl_left(expire_us, self.now_us)
        self.index = nxt
        return Event(action, view, prev_view, nxt)

    def _update(self, cmd: Command) -> Event:
        path = clean(cmd.path)
        index = self.index
        if path == "/":
            raise EtcdError(ROOT_READ_ONLY, "/", index)
        n = self._lookup(path)
        if n.children is not None and cmd.value:
            raise EtcdError(NOT_FILE, path, index)
        nxt = index + 1
        prev = self._view(n)
        if n.children is None:
            n.value = n.value if cmd.refresh else cmd.value
            n.modified = nxt
            view = NodeView(path, n.value, False, None, 0, None, nxt, n.created)
        else:
            # etcd does not move a directory's modifiedIndex here, only the event's.
            view = NodeView(path, None, True, None, 0, None, nxt, n.created)
        return self._changed(n, view, prev, cmd, UPDATE)

    def _cas(self, cmd: Command) -> Event:
        path = clean(cmd.path)
        index = self.index
        if path == "/":
            raise EtcdError(ROOT_READ_ONLY, "/", index)
        n = self._lookup(path)
        if n.children is not None:
            raise EtcdError(NOT_FILE, path, index)
        self._compare(n, cmd.prev_value, cmd.prev_index)
        nxt = index + 1
        prev = self._view(n)
        if not cmd.refresh:
            n.value = cmd.value
        n.modified = nxt
        view = NodeView(path, n.value, False, None, 0, None, nxt, n.created)
        return self._changed(n, view, prev, cmd, COMPARE_AND_SWAP)

    def _changed(
        self, n: Node, view: NodeView, prev: NodeView, cmd: Command, action: str
    ) -> Event:
        """The common end of an update and a compare-and-swap: TTL, index, event."""
        self._set_ttl(n, self._expire_us(cmd))
        if n.expire_us:
            view.expiration_us = n.expire_us
            view.ttl = ttl_left(n.expire_us, self.now_us)
        self.index = view.modified_index
        e = Event(action, view, prev, view.modified_index)
        self._announce(e, cmd.refresh)
        return e

    def _delete(self, cmd: Command) -> Event:
        path = clean(cmd.path)
        index = self.index
        if path == "/":
            raise EtcdError(ROOT_READ_ONLY, "/", index)
        n = self._lookup(path)
        if n.children is not None:
            if not (cmd.dir or cmd.recursive):
                raise EtcdError(NOT_FILE, path, index)
            if n.children and not cmd.recursive:
                raise EtcdError(DIR_NOT_EMPTY, path, index)
        nxt = index + 1
        view = NodeView(path, None, n.children is not None, None, 0, None, nxt, n.created)
        e = Event(DELETE, view, self._view(n), nxt)
        self._remove(n, e)
        self.index = nxt
        self.hub.notify(e)
        return e

    def _cad(self, cmd: Command) -> Event:
        path = clean(cmd.path)
        n = self._lookup(path)
        if n.children is not None:
            # etcd has no root check here; its root's path strips to "".
            raise EtcdError(NOT_FILE, "" if path == "/" else path, self.index)
        self._compare(n, cmd.prev_value, cmd.prev_index)
        nxt = self.index + 1
        view = NodeView(path, None, False, None, 0, None, nxt, n.created)
        e = Event(COMPARE_AND_DELETE, view, self._view(n), nxt)
        self._remove(n, e)
        self.index = nxt
        self.hub.notify(e)
        return e

    def expire(self, cutoff_us: int) -> list[Event]:
        """etcd's DeleteExpiredKeys: remove every node expiring at or before the cutoff."""
        events = []
        while True:
            n = self.ttl.top()
            if n is None or n.expire_us > cutoff_us:
                return events
            self.index += 1
            view = NodeView(n.path, None, n.children is not None, None, 0, None,
                            self.index, n.created)
            e = Event(EXPIRE, view, self._view(n, cutoff_us), self.index)
            self._remove(n, e)
            self.stats.writes[EXPIRE_COUNT] += 1
            self.hub.notify(e)
            events.append(e)

    # ---- reading ----------------------------------------------------------

    def get(
        self, path: str, recursive: bool = False, sorted: bool = False,
        *, now: float | None = None,
    ) -> Event:
        """etcd's Get: the node, and for a directory its visible children (all levels
        if ``recursive``; by key if ``sorted``, else in creation order). TTLs are
        counted from ``now`` (default: the time of the last command). Raises EtcdError.
        """
        path = clean(path)
        try:
            n = self._lookup(path)
        except EtcdError:
            self.stats.gets_fail += 1
            raise
        self.stats.gets_success += 1
        now_us = self.now_us if now is None else to_us(now)
        if n.children is None:
            view = self._view(n, now_us)
        else:
            view = self._dir_view(n, recursive, sorted, now_us)
        return Event(GET, view, None, self.index)

    def watch(
        self, path: str, recursive: bool = False, stream: bool = False, since_index: int = 0
    ) -> Watcher:
        """A watch from ``since_index`` (0: the next index). Raises EtcdError 401
        when that index has left the history."""
        if since_index == 0:
            since_index = self.index + 1
        return self.hub.watch(clean(path), recursive, stream, since_index, self.index)

    def close_watchers(self) -> None:
        """End every watch on this store (clients see their stream end)."""
        self.hub.close_all()

    def take_watchers(self, old: V2Store) -> None:
        """Carry the waiting watches of ``old`` over to this store, which replaces it
        (a snapshot was installed): they fire on this store's next events, as etcd's
        watchers survive a recovery."""
        self.hub.adopt(old.hub)

    def has_ttl_keys(self) -> bool:
        return len(self.ttl) > 0

    def next_expiry(self) -> float | None:
        """When the first key with a TTL expires (UNIX seconds), if any."""
        n = self.ttl.top()
        return None if n is None else n.expire_us / 1_000_000

    def stats_json(self) -> bytes:
        """The body of /v2/stats/store."""
        return self.stats.to_json(self.hub.count)

    # ---- snapshots --------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole replicated state: tree, index, TTLs, history, write counters."""
        return _snapshot.dump(self)

    @classmethod
    def restore(cls, data: bytes) -> V2Store:
        """A store equal to the one :meth:`snapshot` was taken from."""
        return _snapshot.load(cls(), data)

    # ---- internals --------------------------------------------------------

    def _lookup(self, path: str) -> Node:
        """etcd's internalGet: the node at a clean path."""
        n = self.root
        if path == "/":
            return n
        for name in path[1:].split("/"):
            children = n.children
            if children is None:
                raise EtcdError(NOT_DIR, n.path, self.index)
            child = children.get(name)
            if child is None:
                raise EtcdError(KEY_NOT_FOUND, join(n.path, name), self.index)
            n = child
        return n

    def _make_dirs(self, path: str, created: int) -> Node:
        """The directory at a clean path, creating missing ones (etcd's checkDir walk)."""
        n = self.root
        if path == "/":
            return n
        for name in path[1:].split("/"):
            children = n.children
            assert children is not None
            child = children.get(name)
            if child is None:
                child = Node(name, created, created, 0, "", {}, n)
                children[name] = child
            elif child.children is None:
                raise EtcdError(NOT_DIR, child.path, self.index)
            n = child
        return n

    def _compare(self, n: Node, prev_value: str, prev_index: int) -> None:
        index_ok = prev_index == 0 or n.modified == prev_index
        value_ok = prev_value == "" or n.value == prev_value
        if index_ok and value_ok:
            return
        if index_ok:
            cause = f"[{prev_value} != {n.value}]"
        elif value_ok:
            cause = f"[{prev_index} != {n.modified}]"
        else:
            cause = f"[{prev_value} != {n.value}] [{prev_index} != {n.modified}]"
        raise EtcdError(TEST_FAILED, cause, self.index)

    def _set_ttl(self, n: Node, expire_us: int) -> None:
        """etcd's UpdateTTL: 0 makes the node permanent."""
        if expire_us == n.expire_us:
            return
        n.expire_us = expire_us
        if expire_us:
            self.ttl.push(n)
        else:
            self.ttl.discard(n)

    def _announce(self, e: Event, refresh: bool) -> None:
        if refresh:
            e.refresh = True
            self.hub.add(e)
        else:
            self.hub.notify(e)

    def _unlink(self, n: Node) -> None:
        """Remove a file that is being replaced (no watcher is told: a set follows)."""
        parent = n.parent
        assert parent is not None and parent.children is not None
        del parent.children[n.name]
        n.alive = False
        if n.expire_us:
            self.ttl.discard(n)

    def _remove(self, n: Node, e: Event) -> None:
        """Remove ``n`` and its subtree; watchers on removed paths hear ``e``."""
        parent = n.parent
        assert parent is not None and parent.children is not None
        del parent.children[n.name]
        hub = self.hub
        nodes = n.subtree() if n.children else [n]
        for m in reversed(nodes):
            m.alive = False
            if m.expire_us:
                self.ttl.discard(m)
            if hub.watchers:
                hub.notify_watchers(e, m.path, True)

    def _view(self, n: Node, now_us: int | None = None, path: str | None = None) -> NodeView:
        """etcd's Repr(false, false): the node without its children."""
        if path is None:
            path = n.path
        if n.children is None:
            v = NodeView(path, n.value, False, None, 0, None, n.modified, n.created)
        else:
            v = NodeView(path, None, True, None, 0, None, n.modified, n.created)
        if n.expire_us:
            v.expiration_us = n.expire_us
            v.ttl = ttl_left(n.expire_us, self.now_us if now_us is None else now_us)
        return v

    def _dir_view(self, n: Node, recursive: bool, sort: bool, now_us: int) -> NodeView:
        top = self._view(n, now_us)
        if n is self.root:
            top.key = ""
        stack = [(n, top)]
        while stack:
            d, view = stack.pop()
            kids = []
            assert d.children is not None
            prefix = view.key + "/"
            for name, child in d.children.items():
                if name[0] == "_":
                    continue
                cv = self._view(child, now_us, prefix + name)
                kids.append(cv)
                if recursive and child.children:
                    stack.append((child, cv))
            if sort:
                kids.sort(key=_by_key)
            view.nodes = kids
        return top
