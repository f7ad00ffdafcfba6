"""A simulated strict-serializable database, for tests and benchmarks.

Clients run list-append or rw-register transactions against one in-memory state.
Every committed transaction takes effect atomically at an instant strictly inside
its interval (after its invocation, before its completion), so every history this
produces is strict serializable. Some transactions fail (no effect); some end
`info`: they take effect before the `info` is recorded, later (at a random step
after it), or never. After an `info` the client continues as a new process, as in
Jepsen. Keys rotate: after `writes_per_key` writes a key is retired for a fresh
one, so lists stay short. Everything random comes from the seed.

`p_stale` breaks the guarantee on purpose (benchmarks of invalid histories): a read
then answers an older version of its key, as a lagging replica would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from checker.history import Op
from checker.txn.history import APPEND, READ, WRITE, Workload


@dataclass(frozen=True)
class TxnWorkload:
    kind: Workload = "append"
    txns: int = 100
    processes: int = 5
    keys: int = 4  # keys in use at any time
    max_ops: int = 4  # micro-operations per transaction: 1 to this
    writes_per_key: int = 16
    p_read: float = 0.5
    p_fail: float = 0.05
    p_info: float = 0.1
    p_stale: float = 0.0  # reads answered from an older version: not serializable


@dataclass
class _Client:
    process: int
    txn: list[list[Any]] | None = None  # the invoked micro-operations
    result: list[list[Any]] | None = None  # the applied ones, reads filled in


class _Db:
    def __init__(self, kind: Workload, rng: random.Random, p_stale: float):
        self.kind = kind
        self.state: dict[Any, Any] = {}
        self.past: dict[Any, list[Any]] = {}  # rw-register: earlier values of each key
        self.rng = rng
        self.p_stale = p_stale

    def apply(self, txn: list[list[Any]]) -> list[list[Any]]:
        out = []
        for f, k, v in txn:
            if f == READ:
                current = self.state.get(k)
                if self.p_stale and self.rng.random() < self.p_stale:
                    current = self._older(k, current)
                out.append([f, k, list(current) if isinstance(current, list) else current])
            elif f == APPEND:
                self.state.setdefault(k, []).append(v)
                out.append([f, k, v])
            else:
                self.past.setdefault(k, [None]).append(v)
                self.state[k] = v
                out.append([f, k, v])
        return out

    def _older(self, k: Any, current: Any) -> Any:
        if isinstance(current, list):
            return current[: self.rng.randrange(len(current))] if current else current
        past = self.past.get(k, [None])
        return past[self.rng.randrange(len(past) - 1)] if len(past) > 1 else current


def simulate(w: TxnWorkload, seed: int) -> list[Op]:
    """The history of `w.txns` transactions, as recorded ops (with line numbers as in
    a jsonl file)."""
    rng = random.Random(seed)
    db = _Db(w.kind, rng, w.p_stale)
    keys = list(range(w.keys))
    next_key = w.keys
    writes: dict[int, int] = {}
    next_value: dict[int, int] = {}
    clients = [_Client(p) for p in range(w.processes)]
    ghosts: list[list[list[Any]]] = []  # info transactions that will apply later
    ops: list[Op] = []
    started = 0

    def record(process: int, typ: str, value: Any) -> None:
        i = len(ops)
        ops.append(Op(index=i, process=process, type=typ, f="txn",  # type: ignore[arg-type]
                      value=value, time=i * 1000, line=i + 1))

    def new_txn() -> list[list[Any]]:
        nonlocal next_key
        txn = []
        for _ in range(rng.randint(1, w.max_ops)):
            slot = rng.randrange(len(keys))
            k = keys[slot]
            if rng.random() < w.p_read:
                txn.append([READ, k, None])
                continue
            v = next_value.get(k, 0) + 1
            next_value[k] = v
            txn.append([APPEND if w.kind == "append" else WRITE, k, v])
            writes[k] = writes.get(k, 0) + 1
            if writes[k] >= w.writes_per_key:
                keys[slot] = next_key
                next_key += 1
        return txn

    while started < w.txns or any(c.txn is not None for c in clients):
        if ghosts and rng.random() < 0.05:
            db.apply(ghosts.pop(rng.randrange(len(ghosts))))
        c = rng.choice(clients)
        if c.txn is None:
            if started < w.txns:
                c.txn = new_txn()
                started += 1
                record(c.process, "invoke", c.txn)
            continue
        if c.result is not None:  # applied earlier: now it completes
            record(c.process, "ok", c.result)
            c.txn = c.result = None
            continue
        roll = rng.random()
        if roll < w.p_fail:
            record(c.process, "fail", c.txn)
            c.txn = None
        elif roll < w.p_fail + w.p_info:
            fate = rng.randrange(3)
            if fate == 0:
                db.apply(c.txn)
            elif fate == 1:
                ghosts.append(c.txn)
            record(c.process, "info", c.txn)
            c.process += w.processes
            c.txn = None
        else:
            c.result = db.apply(c.txn)
    return ops
