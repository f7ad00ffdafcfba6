"""Histories from a simulated linearizable store, for tests and benchmarks.

Concurrent processes call a store that applies each operation atomically at
one instant inside its interval, so every history it records is linearizable
by construction. Some calls crash (`info`): they take effect or not, and the
process is replaced by a new one, as in Jepsen. Everything is drawn from one
seeded generator.
"""

from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass
from typing import Any

from checker.history import UNOBSERVED, Op, Operation, pair

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


class Events:
    """Simulated events in time order; equal times in the order they were pushed."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str, Any]] = []
        self._seq = 0

    def push(self, t: int, kind: str, payload: Any) -> None:
        heapq.heappush(self._heap, (t, self._seq, kind, payload))
        self._seq += 1

    def pop(self) -> tuple[int, str, Any]:
        t, _, kind, payload = heapq.heappop(self._heap)
        return t, kind, payload

    def __bool__(self) -> bool:
        return bool(self._heap)


def simulate(seed: int, w: Workload) -> list[Op]:
    if w.kind not in WORKLOADS:
        raise ValueError(f"unknown workload {w.kind!r}")
    rng = random.Random(seed)
    state: dict[Any, Any] = {}
    ops: list[Op] = []
    events = Events()  # kind: "invoke" | "apply" | "complete"
    push = events.push

    next_process = w.processes
    for p in range(w.processes):
        push(rng.randrange(1000), "invoke", p)
    invoked = 0
    appended = 0
    while events:
        t, kind, payload = events.pop()
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


# -- one register, unique values, many timeouts ------------------------------------------------

INJECTIONS = ("stale-read", "inversion")


@dataclass
class RegisterWorkload:
    """One key read, written and cas'ed by `processes` clients, every written value unique.

    A fraction `p_timeout` of the writes and cas time out (`info`): each takes
    effect with probability 1/2, at an instant that may come after the
    timeout, and its process is replaced, as in Jepsen. Values are 1, 2, 3, …
    in invocation order; the register starts at 0 (Knossos's cas-register).
    A cas compares with the value its process last saw (0 at first), so some
    succeed and some fail. `inject` spoils the history in one place so that it
    is not linearizable: "stale-read" (an ok read returns a value that a write
    completed before the read began had already replaced), "inversion" (an ok
    read returns the value that an indeterminate write had replaced, after
    another read saw that write).
    """

    ops: int = 1000
    processes: int = 10
    p_read: float = 0.5
    p_cas: float = 0.15
    p_timeout: float = 0.3
    inject: str | None = None


def register_history(seed: int, w: RegisterWorkload) -> list[Op]:
    """A cas-register history (initial value 0); linearizable unless `w.inject`.

    Raises ValueError when the injection finds no place to go (try another seed).
    """
    if w.inject is not None and w.inject not in INJECTIONS:
        raise ValueError(f"unknown injection {w.inject!r}; known: {', '.join(INJECTIONS)}")
    rng = random.Random(seed)
    ops: list[Op] = []
    events = Events()
    push = events.push

    state = 0
    seen: dict[int, Any] = {}
    # value -> its writer's record; records are dicts shared with the op list
    writer: dict[Any, dict[str, Any]] = {0: {"start": -1, "end": -1, "info": False}}
    applied: list[Any] = [0]  # values in the order they took effect
    records: list[dict[str, Any]] = []
    next_value = 1
    next_process = w.processes
    for p in range(w.processes):
        push(rng.randrange(100), "invoke", p)
    invoked = 0
    while events:
        t, kind, payload = events.pop()
        if kind == "invoke":
            if invoked >= w.ops:
                continue
            invoked += 1
            p = payload
            r = rng.random()
            rec: dict[str, Any] = {"process": p, "start": len(ops), "end": None, "info": False}
            if r < w.p_read:
                rec.update(f="read", value=None)
            elif r < w.p_read + w.p_cas:
                rec.update(f="cas", value=[seen.get(p, 0), next_value])
                next_value += 1
            else:
                rec.update(f="write", value=next_value)
                next_value += 1
            records.append(rec)
            ops.append(_op(p, "invoke", rec["f"], None, rec["value"], t))
            crash = rec["f"] != "read" and rng.random() < w.p_timeout
            apply_at = t + 1 + rng.randrange(200)
            done_at = t + 2 + rng.randrange(400)
            if crash:
                rec["info"] = True
                if rng.random() < 0.5:
                    push(t + 1 + rng.randrange(800), "apply", rec)  # maybe after the timeout
                push(done_at, "timeout", rec)
            else:
                push(apply_at, "apply", rec)
                push(max(done_at, apply_at + 1), "complete", rec)
        elif kind == "apply":
            rec = payload
            if rec["f"] == "read":
                rec["result"] = ("ok", state)
            elif rec["f"] == "write" or state == rec["value"][0]:
                state = rec["value"] if rec["f"] == "write" else rec["value"][1]
                writer[state] = rec
                applied.append(state)
                rec["result"] = ("ok", rec["value"])
            else:
                rec["result"] = ("fail", rec["value"])
        elif kind == "timeout":
            rec = payload
            rec["end"] = len(ops)
            ops.append(_op(rec["process"], "info", rec["f"], None, rec["value"], t,
                           error="timeout"))
            push(t + 1 + rng.randrange(50), "invoke", next_process)
            next_process += 1
        else:
            rec = payload
            typ, value = rec["result"]
            rec["end"] = len(ops)
            if rec["f"] == "read":
                seen[rec["process"]] = value
            elif typ == "ok":
                seen[rec["process"]] = value if rec["f"] == "write" else value[1]
            ops.append(_op(rec["process"], typ, rec["f"], None, value, t,
                           error="compare-failed" if typ == "fail" else None))
            push(t + 1 + rng.randrange(50), "invoke", rec["process"])
    ops = [Op(i, o.process, o.type, o.f, o.value, o.key, o.time, o.error)
           for i, o in enumerate(ops)]
    if w.inject == "stale-read":
        return _inject_stale_read(ops, records, writer, applied, rng)
    if w.inject == "inversion":
        return _inject_inversion(ops, records, writer, applied)
    return ops


def _reads(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["f"] == "read" and r["end"] is not None]


def _with_read_value(ops: list[Op], read: dict[str, Any], value: Any) -> list[Op]:
    out = list(ops)
    o = ops[read["end"]]
    out[read["end"]] = Op(o.index, o.process, o.type, o.f, value, o.key, o.time, o.error)
    return out


def _inject_stale_read(ops: list[Op], records: list[dict[str, Any]],
                       writer: dict[Any, dict[str, Any]], applied: list[Any],
                       rng: random.Random) -> list[Op]:
    """An ok read returns v although v's writer, then a determinate write of another
    value, both completed before the read began (real time forbids it)."""
    reads = _reads(records)
    rng.shuffle(reads)
    for read in reads:
        for k in range(len(applied) - 2, -1, -1):
            v, later = applied[k], writer[applied[k + 1]]
            w_v = writer[v]
            if (w_v["end"] is not None and not w_v["info"] and not later["info"]
                    and later["end"] is not None and later["start"] > w_v["end"]
                    and later["end"] < read["start"]):
                return _with_read_value(ops, read, v)
    raise ValueError("no place for a stale read; try another seed")


def _inject_inversion(ops: list[Op], records: list[dict[str, Any]],
                      writer: dict[Any, dict[str, Any]], applied: list[Any]) -> list[Op]:
    """Read r1 sees v, written by an indeterminate write; a read r2 invoked after r1
    completed returns u, the value v replaced, whose writer completed before r1 began.

    Real time forces u's writer, then v's, then r1, then r2: r2 cannot see u.
    Among the places this can go, the one that leaves the fewest determinate
    writes completing between u's writer and r2 (none, when it can), so that
    only a search, not a cheap refutation, finds it.
    """
    reads = _reads(records)
    first_read_after: list[tuple[int, dict[str, Any]]] = sorted(
        (r["start"], r) for r in reads)
    starts = [s for s, _ in first_read_after]
    determinate = [r for r in records if r["f"] != "read" and not r["info"]
                   and r["end"] is not None and r.get("result", ("fail",))[0] == "ok"]
    best: tuple[int, dict[str, Any], Any] | None = None
    middle = len(applied) // 2  # from the middle on, then the first half
    for k in [*range(max(1, middle), len(applied)), *range(1, max(1, middle))]:
        u, v = applied[k - 1], applied[k]
        w_u, w_v = writer[u], writer[v]
        if not w_v["info"] or w_u["info"] or w_u["end"] is None:
            continue
        for r1 in reads:
            if r1["result"][1] != v or r1["start"] < w_u["end"]:
                continue
            i = bisect.bisect_right(starts, r1["end"])
            if i == len(starts):
                continue
            r2 = first_read_after[i][1]
            blockers = sum(1 for d in determinate
                           if d["start"] > w_u["end"] and d["end"] < r2["start"])
            if best is None or blockers < best[0]:
                best = (blockers, r2, u)
            break
        if best is not None and best[0] == 0:
            break
    if best is None:
        raise ValueError("no place for an inversion; try another seed")
    return _with_read_value(ops, best[1], best[2])


def jepsen_log_lines(ops: list[Op]) -> list[str]:
    """A register history as Jepsen's log lines (porcupine's etcd test data format):
    `INFO  jepsen.util - P<TAB>:type<TAB>:f<TAB>value`; an `info` completion's value is
    `:timed-out`. Integer values, cas values [old new], reads' invocations nil."""

    def edn(value: Any) -> str:
        if value is None or value is UNOBSERVED:
            return "nil"
        if isinstance(value, list | tuple):
            return "[" + " ".join(edn(v) for v in value) + "]"
        return str(value)

    lines = []
    for o in ops:
        value = ":timed-out" if o.type == "info" else edn(o.value)
        lines.append(f"INFO  jepsen.util - {o.process}\t:{o.type}\t:{o.f}\t{value}\n")
    return lines


# -- stale reads the cheap refutation misses ---------------------------------------------------


def inject_late_stale_read(ops: list[Op]) -> list[Op]:
    """A register history (unique values, as from `register_history`) with one ok read in
    its second half changed to return the oldest value it can without a determinate
    write or cas completing between that value's writer and the read (so the refutation
    cannot see it; the zone procedure decides it): a stale read, served long after the
    value was replaced by writes whose outcome nobody learnt. Raises ValueError when no
    read can take one."""
    paired = list(pair(ops))
    determinate = [o for o in paired if o.f in ("write", "cas") and o.outcome == "ok"
                   and o.completed is not None]
    writers = [(o.value if o.f == "write" else o.value[1], o) for o in determinate]
    reads = sorted((o for o in paired if o.f == "read" and o.outcome == "ok"
                    and o.completed is not None), key=lambda o: o.invoked)
    best: tuple[int, Operation, Any] | None = None
    for r in reads[len(reads) // 2:]:
        # a writer is unrefuted when no determinate operation completed before r began
        # was invoked after the writer completed
        latest = max((d.invoked for d in determinate if (d.completed or 0) < r.invoked),
                     default=-1)
        for value, w in writers:
            assert w.completed is not None
            if w.completed >= r.invoked or value == r.value or w.completed < latest:
                continue
            if best is None or r.invoked - w.completed > best[0]:
                best = (r.invoked - w.completed, r, value)
    if best is None:
        raise ValueError("no read can return a stale value unrefuted; try another seed")
    _, read, value = best
    assert read.completed is not None
    out = list(ops)
    done = ops[read.completed]
    out[read.completed] = Op(done.index, done.process, done.type, done.f, value, done.key,
                             done.time, done.error)
    return out


def keyed_register_history(seed: int, keys: int, ops_per_key: int, processes: int = 10,
                           p_timeout: float = 0.6, p_stale: float = 0.9) -> list[Op]:
    """A history of the harness's register workload (checked with the `kv` model): the
    keys 0, 1, … one after the other, each a `register_history` of `ops_per_key`
    operations by `processes` clients whose first operation is a write of 0 (a key
    starts absent), a fraction `p_stale` of them spoiled by `inject_late_stale_read`."""
    rng = random.Random(seed)
    out: list[Op] = []
    start = 0
    for key in range(keys):
        spoil = rng.random() < p_stale
        for attempt in range(50):
            part = register_history(seed * 7919 + key * 101 + attempt, RegisterWorkload(
                ops=ops_per_key, processes=processes, p_timeout=p_timeout))
            try:
                part = inject_late_stale_read(part) if spoil else part
                break
            except ValueError:
                continue
        out += [Op(0, 0, "invoke", "write", 0, key, start),
                Op(0, 0, "ok", "write", 0, key, start + 1000)]
        end = start + 2000
        for o in part:
            t = (o.time or 0) + start + 2000
            out.append(Op(0, o.process, o.type, o.f, o.value, key, t, o.error))
            end = max(end, t)
        start = end + 1000
    return [Op(i, o.process, o.type, o.f, o.value, o.key, o.time, o.error)
            for i, o in enumerate(out)]


# -- nemesis operations, as the harness records them ------------------------------------------

def with_faults(ops: list[Op], seed: int, faults: int, recover: float = 0.8) -> list[Op]:
    """The history with `faults` nemesis faults merged in at random times, each an
    invocation and its completion (`kill` of a node), and after most of them (a fraction
    `recover`) a `restart` pair; the nemesis does one thing at a time, as the harness's.
    Lines are in time order and indexed again."""
    from checker.history import NEMESIS

    rng = random.Random(seed)
    end = max((o.time or 0 for o in ops), default=0)
    nemesis: list[Op] = []
    at = 0
    step = max(1, end // max(1, faults))
    for n in range(faults):
        at = max(at, n * step + rng.randrange(step))
        node = f"n{rng.randrange(5) + 1}"
        took = rng.randrange(1, step // 20 + 2)
        nemesis.append(Op(0, NEMESIS, "info", "kill", "random", time=at))
        nemesis.append(Op(0, NEMESIS, "info", "kill", {"nodes": [node]}, time=at + took))
        at += took + 1
        if rng.random() < recover:
            at += rng.randrange(step // 2 + 1)
            nemesis.append(Op(0, NEMESIS, "info", "restart", None, time=at))
            nemesis.append(Op(0, NEMESIS, "info", "restart", {"nodes": [node]}, time=at + took))
            at += took + 1
    merged = sorted(ops + nemesis, key=lambda o: o.time or 0)
    return [Op(i, o.process, o.type, o.f, o.value, o.key, o.time, o.error)
            for i, o in enumerate(merged)]
