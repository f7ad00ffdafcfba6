"""Histories from a simulated linearizable store, for tests and benchmarks.

Concurrent processes call a store that applies each operation atomically at
one instant inside its interval, so every history it records is linearizable
by construction. Some calls crash (`info`): they take effect or not, and the
process is replaced by a new one, as in Jepsen. Everything is drawn from one
seeded generator.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any

from checker.history import UNOBSERVED, Op

WORKLOADS = ("cas-register", "etcd", "kv-append")


@dataclass
class Workload:
    kind: str = "etcd"
    ops: int = 1000  # operations (invocations)
    processes: int = 5
    keys: int = 1  # 1: ops carry no key
    values: int = 5  # distinct values written (registers)
    p_info: float = 0.02  # chance an operation's outcome is unknown
    p_read: float = 0.4
    p_cas: float = 0.3


def initial(kind: str) -> Any:
    """The model's initial value for a workload kind."""
    return {"cas-register": 0, "etcd": None, "kv-append": ""}[kind]


def simulate(seed: int, w: Workload) -> list[Op]:
    if w.kind not in WORKLOADS:
        raise ValueError(f"unknown workload {w.kind!r}")
    rng = random.Random(seed)
    state: dict[Any, Any] = {}
    ops: list[Op] = []
    # (time, seq, kind, payload) with kind: "invoke" | "apply" | "complete"
    events: list[tuple[int, int, str, Any]] = []
    seq = 0

    def push(t: int, kind: str, payload: Any) -> None:
        nonlocal seq
        heapq.heappush(events, (t, seq, kind, payload))
        seq += 1

    next_process = w.processes
    for p in range(w.processes):
        push(rng.randrange(1000), "invoke", p)
    invoked = 0
    appended = 0
    while events:
        t, _, kind, payload = heapq.heappop(events)
        if kind == "invoke":
            if invoked >= w.ops:
                continue
            invoked += 1
            process = payload
            key = rng.randrange(w.keys) if w.keys > 1 else None
            f, value = _choose(rng, w, appended)
            if f == "append":
                appended += 1
            ops.append(_op(process, "invoke", f, key, value, t))
            call = {"process": process, "f": f, "key": key, "value": value}
            crash = rng.random() < w.p_info
            apply_at = t + 1 + rng.randrange(2000)
            done_at = apply_at + 1 + rng.randrange(2000)
            if not crash or rng.random() < 0.5:
                push(apply_at, "apply", call)
            else:
                call["skipped"] = True
            push(done_at, "complete", (call, crash))
        elif kind == "apply":
            _apply(payload, state, w.kind)
        else:
            call, crash = payload
            process, f, key = call["process"], call["f"], call["key"]
            if crash:
                ops.append(_op(process, "info", f, key, call["value"], t, error="timeout"))
                next_process += 1
                push(t + 1 + rng.randrange(500), "invoke", next_process - 1)
                continue
            typ, value, error = call["outcome"]
            ops.append(_op(process, typ, f, key, value, t, error=error))
            push(t + 1 + rng.randrange(500), "invoke", process)
    return [
        Op(i, o.process, o.type, o.f, o.value, o.key, o.time, o.error) for i, o in enumerate(ops)
    ]


def _choose(rng: random.Random, w: Workload, appended: int) -> tuple[str, Any]:
    r = rng.random()
    if w.kind == "kv-append":
        if r < w.p_read:
            return "get", UNOBSERVED
        if r < w.p_read + 0.05:
            return "put", f"p{appended}."
        return "append", f"a{appended}."
    v = rng.randrange(w.values)
    if r < w.p_read:
        return "read", UNOBSERVED
    if r < w.p_read + w.p_cas:
        return "cas", [v, rng.randrange(w.values)]
    if w.kind == "etcd" and r > 0.95:
        return ("delete", UNOBSERVED) if r > 0.975 else ("create", v)
    return "write", v


def _apply(call: dict[str, Any], state: dict[Any, Any], kind: str) -> None:
    key, f, value = call["key"], call["f"], call["value"]
    current = state.get(key, initial(kind))
    ok: tuple[str, Any, Any] = ("ok", value, None)
    if f in ("read", "get"):
        ok = ("ok", current, None)
    elif f in ("write", "put"):
        state[key] = value
    elif f == "append":
        state[key] = current + value
    elif f == "cas":
        if current is not None and current == value[0]:
            state[key] = value[1]
        else:
            ok = ("fail", value, "compare-failed")
    elif f == "create":
        if current is None:
            state[key] = value
        else:
            ok = ("fail", value, "key-exists")
    elif f == "delete":
        if current is not None:
            state[key] = None
        else:
            ok = ("fail", UNOBSERVED, "key-not-found")
    call["outcome"] = ok


def _op(process: int, typ: str, f: str, key: Any, value: Any, t: int,
        error: Any = None) -> Op:
    return Op(0, process, typ, f, value, key, t * 1000, error)  # type: ignore[arg-type]


def inject_impossible(ops: list[Op], seed: int) -> list[Op]:
    """The same history with one ok read (or cas) changed to need a value never written."""
    rng = random.Random(seed)
    targets = [i for i, o in enumerate(ops) if o.type == "ok" and o.f in ("read", "get", "cas")]
    if not targets:
        raise ValueError("no ok read or cas to change")
    i = rng.choice(targets)
    o = ops[i]
    bogus: Any = "never-written" if o.f != "cas" else ["never-written", 0]
    out = list(ops)
    out[i] = Op(o.index, o.process, o.type, o.f, bogus, o.key, o.time, o.error)
    if o.f == "cas":  # the invocation carries the cas arguments too
        j = max(k for k in range(i) if ops[k].process == o.process and ops[k].type == "invoke")
        inv = ops[j]
        out[j] = Op(inv.index, inv.process, "invoke", inv.f, bogus, inv.key, inv.time)
    return out
