"""Workloads: which operations the clients do, and which checkers judge them.

- `register`: read / write / cas on independent keys (jepsen.independent): the client
  workers in groups of `group_size`, each group on its own key for `ops_per_key`
  operations, then on a fresh one, so that each key's history stays small enough to
  check. Every write and cas writes a value nobody else writes (an increasing counter
  per key); a cas expects one of the values written to that key just before, so many
  succeed. Judged by the linearizability checker with the `kv` model (etcd keys, a key
  starts absent).
- `set`: unique adds (one key per element under the set's directory) and reads of the
  whole set, a fresh set after `ops_per_key` operations; judged by set-full (Jepsen's
  analysis: lost, stale, unexpected, never-read elements and the visibility latency).

Both end with a final phase that reads every key they used from a quorum.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.generator import (
    Base,
    Context,
    EachOnce,
    Fn,
    Generator,
    Limit,
    Mix,
    Next,
    PerKey,
    Stagger,
    Worker,
)
from harness.ops import Completion, Invocation


class Workload(Protocol):
    name: str
    model: str | None  # the linearizability model, None when not judged by it
    checkers: tuple[str, ...]

    def generator(self) -> Generator:
        """The clients' operations in the main phase (endless; the runner limits time)."""
        ...

    def final(self) -> Generator:
        """The final phase: a quorum read of every key used."""
        ...

    def client_options(self) -> dict[str, Any]: ...


@dataclass
class Keyed:
    """What both workloads share: keys handed out by `PerKey`, read back at the end."""

    concurrency: int = 10
    reads: str = "quorum"  # or "local": etcd's default GET, which may be stale
    rate: float = 0.0  # operations per second over all clients; 0: as fast as they go
    timeout: float = 5.0
    _per_key: PerKey | None = None

    def paced(self, per_key: PerKey) -> Generator:
        self._per_key = per_key
        return Stagger(1 / self.rate, per_key) if self.rate > 0 else per_key

    def final(self) -> Generator:
        per_key = self._per_key
        return EachOnce(
            lambda: per_key.keys if per_key else [],
            lambda key: Invocation("read", key=key, final=True),
        )

    def client_options(self) -> dict[str, Any]:
        return {"reads": self.reads, "timeout": self.timeout}


class ByWorker(Base):
    """`chosen`'s operations for the workers `which` picks, `others`' for the rest."""

    def __init__(self, which: Callable[[Worker], bool], chosen: Generator,
                 others: Generator) -> None:
        self.which, self.chosen, self.others = which, chosen, others

    def op(self, ctx: Context, worker: Worker) -> Next:
        return (self.chosen if self.which(worker) else self.others).op(ctx, worker)

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        (self.chosen if self.which(worker) else self.others).update(ctx, worker, op, done)


@dataclass
class Register(Keyed):
    group_size: int | None = None  # default: every worker on the same key
    ops_per_key: int = 200
    read: float = 0.5
    write: float = 0.3
    cas: float = 0.2
    # 0: every worker does the read/write/cas mix; k: k workers of each group only
    # write and cas (the first k for the first key, the next k for the next...), the
    # others only read. Workers are spread over the nodes in
    # turn, so each write is read at once through several other nodes: a stale read or
    # a lost write shows within a few operations.
    writers: int = 0
    name: str = "register"
    model: str | None = "kv"
    checkers: tuple[str, ...] = ("linearizable", "stats")
    _next_value: dict[Any, int] = field(default_factory=lambda: defaultdict(int))
    _recent: dict[Any, deque[int]] = field(default_factory=dict)
    _keys_made: int = 0

    def _value(self, key: Any) -> int:
        self._next_value[key] += 1
        value = self._next_value[key]
        self._recent.setdefault(key, deque(maxlen=3)).append(value)
        return value

    def _ops(self, key: Any) -> Generator:
        def read(ctx: Context, worker: Worker) -> Invocation:
            return Invocation("read", key=key)

        def write(ctx: Context, worker: Worker) -> Invocation:
            return Invocation("write", self._value(key), key)

        def cas(ctx: Context, worker: Worker) -> Invocation:
            recent = list(self._recent.get(key, ())) or [0]
            expected = ctx.rng.choice(recent)
            return Invocation("cas", [expected, self._value(key)], key)

        mix = Mix([(self.read, Fn(read)), (self.write, Fn(write)), (self.cas, Fn(cas))])
        if self.writers:
            # The writers move to the next slots with each key, so over the keys every
            # node takes the writes in turn, the leader and the followers.
            size, first = self.group_size or self.concurrency, self._keys_made
            update = Mix([(self.write, Fn(write)), (self.cas, Fn(cas))])
            mix = ByWorker(
                lambda w: isinstance(w.slot, int) and (w.slot - first) % size < self.writers,
                update, Fn(read))
        self._keys_made += 1
        return Limit(self.ops_per_key, mix)

    def __post_init__(self) -> None:
        size = self.group_size or self.concurrency
        if not isinstance(self.writers, int) or not 0 <= self.writers < size:
            raise ValueError(f"writers: expected a whole number from 0 to {size - 1} (fewer "
                             f"than the workers on a key), got {self.writers!r}")

    def generator(self) -> Generator:
        return self.paced(PerKey(self.group_size or self.concurrency, self._ops))


@dataclass
class Set(Keyed):
    ops_per_key: int = 2000
    add: float = 0.9
    read: float = 0.1
    linearizable: bool = True  # a stale read is an error (set-full's :linearizable?)
    name: str = "set"
    model: str | None = None
    checkers: tuple[str, ...] = ("set-full", "stats")
    _next: int = 0

    def _ops(self, key: Any) -> Generator:
        def add(ctx: Context, worker: Worker) -> Invocation:
            self._next += 1
            return Invocation("add", self._next, key)

        def read(ctx: Context, worker: Worker) -> Invocation:
            return Invocation("read", key=key)

        return Limit(self.ops_per_key, Mix([(self.add, Fn(add)), (self.read, Fn(read))]))

    def generator(self) -> Generator:
        return self.paced(PerKey(self.concurrency, self._ops, name=lambda i: f"s{i}"))


WORKLOADS: dict[str, type] = {"register": Register, "set": Set}


def make_workload(name: str, concurrency: int, options: Mapping[str, Any]) -> Workload:
    cls = WORKLOADS[name]
    return cls(concurrency=concurrency, **dict(options))  # type: ignore[no-any-return]
