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

- `append` (list-append) and `wr` (rw-register): transactions of `min_length` to
  `max_length` micro-operations over `key_count` active keys; a key that has had
  `writes_per_key` writes is retired for a fresh one (values unique per key). Over
  etcd's v3 API; judged by the transactional checker (checker/txn, Elle's analysis)
  for `consistency_models`.

All end with a final phase that reads every key they used from a quorum
(linearizably), through every node: a node whose state diverged from the others' (lost
or extra writes it applied) answers differently. `register` speaks etcd's v2 API
unless `api: v3`; `append` and `wr` speak v3 only.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from harness.etcd_v3 import READ_MODES as V3_READS
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
    lanes_for,
)
from harness.ops import Completion, Invocation

API_READS: dict[str, tuple[str, ...]] = {  # each API's read modes, the default first
    "v2": ("quorum", "local"),
    "v3": V3_READS,
}


class Workload(Protocol):
    name: str
    model: str | None  # the linearizability model, None when not judged by it
    checkers: tuple[str, ...]
    api: str  # the API its operations need: v2 or v3
    consistency_models: tuple[str, ...]  # what the txn checker judges it for

    def generator(self) -> Generator:
        """The clients' operations in the main phase (endless; the runner limits time)."""
        ...

    def final(self, nodes: int = 1) -> Generator:
        """The final phase: a quorum read of every key used, through each of `nodes`
        nodes (as many as there are workers)."""
        ...

    def client_options(self) -> dict[str, Any]: ...


@dataclass
class Keyed:
    """What both workloads share: keys handed out by `PerKey`, read back at the end."""

    concurrency: int = 10
    reads: str = ""  # v2: quorum or local (may be stale); v3: linearizable or serializable
    rate: float = 0.0  # operations per second over all clients; 0: as fast as they go
    timeout: float = 5.0
    _per_key: PerKey | None = None
    api: ClassVar[str] = "v2"
    consistency_models: ClassVar[tuple[str, ...]] = ()

    def paced(self, per_key: PerKey) -> Generator:
        self._per_key = per_key
        return Stagger(1 / self.rate, per_key) if self.rate > 0 else per_key

    def final(self, nodes: int = 1) -> Generator:
        per_key = self._per_key
        return EachOnce(
            lambda: per_key.keys if per_key else [],
            lambda key: Invocation("read", key=key, final=True),
            lanes=lanes_for(nodes, self.concurrency),
        )

    def client_options(self) -> dict[str, Any]:
        return {"reads": self.reads or API_READS[self.api][0], "timeout": self.timeout}


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
    api: str = "v2"  # type: ignore[misc]  # or v3
    cas_guard: str = "value"  # v3: cas compares the value, or the mod_revision read before
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

    def client_options(self) -> dict[str, Any]:
        return {**super().client_options(), "cas_guard": self.cas_guard}


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


@dataclass
class Transactional:
    """Transactions over a few keys at a time (Elle's generators): each micro-operation
    picks one of `key_count` active keys, and reads it (with probability `read_ratio`)
    or writes it; a key written `writes_per_key` times is replaced by a fresh key."""

    concurrency: int = 10
    key_count: int = 5
    min_length: int = 1
    max_length: int = 4
    writes_per_key: int = 32
    read_ratio: float = 0.5
    reads: str = ""  # linearizable (default) or serializable
    consistency_models: tuple[str, ...] = ("strict-serializable",)
    rate: float = 0.0
    timeout: float = 5.0
    name: str = ""
    model: str | None = None
    checkers: tuple[str, ...] = ("txn", "stats")
    api: ClassVar[str] = "v3"
    write_f: str = ""  # the micro-operation that writes: append or w
    _active: list[int] = field(default_factory=list)
    _writes: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _used: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.consistency_models = tuple(self.consistency_models)
        if not 0 <= self.read_ratio <= 1:
            raise ValueError(f"read_ratio {self.read_ratio} is not between 0 and 1")
        if self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} is more than max_length "
                             f"{self.max_length}")

    def _key(self, ctx: Context) -> int:
        while len(self._active) < self.key_count:
            key = len(self._used)
            self._used.append(key)
            self._active.append(key)
        return ctx.rng.choice(self._active)

    def _txn(self, ctx: Context, worker: Worker) -> Invocation:
        micro: list[list[Any]] = []
        for _ in range(ctx.rng.randint(self.min_length, self.max_length)):
            key = self._key(ctx)
            if ctx.rng.random() < self.read_ratio:
                micro.append(["r", key, None])
                continue
            self._writes[key] += 1
            micro.append([self.write_f, key, self._writes[key]])  # unique per key
            if self._writes[key] >= self.writes_per_key:
                self._active.remove(key)
        return Invocation("txn", micro)

    def generator(self) -> Generator:
        gen = Fn(self._txn)
        return Stagger(1 / self.rate, gen) if self.rate > 0 else gen

    def final(self, nodes: int = 1) -> Generator:
        return EachOnce(lambda: list(self._used),
                        lambda key: Invocation("txn", [["r", key, None]], key, final=True),
                        lanes=lanes_for(nodes, self.concurrency))

    def client_options(self) -> dict[str, Any]:
        return {"reads": self.reads or "linearizable", "timeout": self.timeout,
                "lists": self.write_f == "append"}


@dataclass
class Append(Transactional):
    """list-append: `["append", k, e]` adds e to the list at k; reads see whole lists."""

    name: str = "append"
    write_f: str = "append"


@dataclass
class Wr(Transactional):
    """rw-register: `["w", k, v]` writes v (blindly) to k; reads see one value."""

    name: str = "wr"
    write_f: str = "w"


WORKLOADS: dict[str, type] = {"register": Register, "set": Set, "append": Append, "wr": Wr}
# options a spec may not set: what a workload is, not how it runs
FIXED_OPTIONS = frozenset({"name", "model", "checkers", "concurrency", "write_f"})


def make_workload(name: str, concurrency: int, options: Mapping[str, Any]) -> Workload:
    cls = WORKLOADS[name]
    return cls(concurrency=concurrency, **dict(options))  # type: ignore[no-any-return]
