"""Generators and the interpreter: which operations come, in what order, by which process.

The interpreter here is the production one (harness.interpreter) with the production
recorder; only the client is a double: an in-memory register that applies each
operation atomically and can be told to leave some writes undecided.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from checker.history import NEMESIS, Op
from harness.client import Client, Node
from harness.generator import (
    Await,
    Both,
    Clients,
    Context,
    Cycle,
    EachOnce,
    Fn,
    Limit,
    Mix,
    Nemesis,
    Once,
    Pending,
    PerKey,
    Phases,
    Seq,
    Sleep,
    Stagger,
    TimeLimit,
    Worker,
)
from harness.interpreter import Interpreter
from harness.ops import Completion, Invocation
from harness.recorder import Recorder, read_history
from harness.workload import Register
from nemesis.core import NoNemesis

SEED = 20261130


class MemoryClient:
    """A register per key in a dict shared by all clients; every `info_every`-th write
    (counted over all clients) ends `info` after taking effect."""

    def __init__(self, state: dict[Any, Any], counter: list[int], info_every: int = 0) -> None:
        self.state, self.counter, self.info_every = state, counter, info_every

    async def open(self, node: Node) -> None:
        return None

    async def invoke(self, op: Invocation) -> Completion:
        await asyncio.sleep(0)
        if op.f == "read":
            return Completion("ok", self.state.get(op.key))
        self.state[op.key] = op.value
        self.counter[0] += 1
        if self.info_every and self.counter[0] % self.info_every == 0:
            return Completion("info", op.value, "timeout")
        return Completion("ok", op.value)

    async def close(self) -> None:
        return None


def interpret(gen: Any, tmp_path: Path, concurrency: int = 3, info_every: int = 0) -> list[Op]:
    state: dict[Any, Any] = {}
    counter = [0]

    async def open_client(slot: int) -> Client:
        return MemoryClient(state, counter, info_every)

    async def main() -> list[Op]:
        recorder = Recorder(tmp_path / "history.jsonl")
        interpreter = Interpreter(
            gen, concurrency, open_client, NoNemesis(), None,  # type: ignore[arg-type]
            recorder, random.Random(SEED),
        )  # fmt: skip
        recorder.begin()
        await interpreter.run()
        recorder.close()
        return read_history(tmp_path / "history.jsonl")

    return asyncio.run(main())


def write(ctx: Context, worker: Worker) -> Invocation:
    return Invocation("write", ctx.rng.randrange(1000), "k")


def read(ctx: Context, worker: Worker) -> Invocation:
    return Invocation("read", key="k")


def test_limit_gives_exactly_n_operations_and_the_history_file_has_them_all(
    tmp_path: Path,
) -> None:
    ops = interpret(Clients(Limit(25, Fn(write))), tmp_path)
    assert sum(op.type == "invoke" for op in ops) == 25
    assert sum(op.type == "ok" for op in ops) == 25
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(50))
    times = [op.time for op in ops]
    assert times == sorted(times)


def test_a_process_whose_operation_ended_info_is_replaced(tmp_path: Path) -> None:
    ops = interpret(Clients(Limit(30, Fn(write))), tmp_path, concurrency=3, info_every=4)
    infos = [op for op in ops if op.type == "info"]
    assert infos, "the double makes every 4th write info"
    for info in infos:
        later = [op for op in ops if op.index > info.index and op.process == info.process]
        assert later == [], f"process {info.process} went on after its info"
    replaced = {int(info.process) + 3 for info in infos[:-1]}
    assert replaced <= {op.process for op in ops}, "a retired process's slot went on as p+3"


def test_phases_start_only_when_the_previous_phase_has_completed(tmp_path: Path) -> None:
    gen = Phases([Clients(Limit(12, Fn(write))), Clients(Limit(6, Fn(read)))])
    ops = interpret(gen, tmp_path)
    last_write = max(op.index for op in ops if op.f == "write")
    first_read = min(op.index for op in ops if op.f == "read")
    assert last_write < first_read
    assert sum(op.f == "read" and op.type == "invoke" for op in ops) == 6


def test_mix_follows_its_weights_and_the_seed() -> None:
    def sample(seed: int) -> list[str]:
        gen = Mix([(3, Fn(read)), (1, Fn(write))])
        ctx = Context(random.Random(seed), [Worker(0, 0)])
        return [gen.op(ctx, Worker(0, 0)).f for _ in range(4000)]  # type: ignore[union-attr]

    first = sample(SEED)
    assert first == sample(SEED), "the same seed must give the same operations"
    assert 0.70 < first.count("read") / len(first) < 0.80


def test_stagger_spaces_operations_at_its_average_period() -> None:
    gen = Stagger(0.1, Fn(read))
    ctx = Context(random.Random(SEED), [Worker(0, 0)])
    emitted = []
    for step in range(100_000):  # 10 s of virtual time in 0.1 ms steps
        ctx.time = step / 10_000
        found = gen.op(ctx, Worker(0, 0))
        if isinstance(found, Invocation):
            emitted.append(ctx.time)
        else:
            assert isinstance(found, Pending) and found.until is not None and found.until > ctx.time
    assert 85 <= len(emitted) <= 115, len(emitted)


def test_time_limit_and_sleep_answer_pending_until_their_time() -> None:
    ctx = Context(random.Random(SEED), [Worker(0, 0)])
    w = Worker(0, 0)
    limited = TimeLimit(2.0, Seq([Sleep(1.0), Once(Invocation("kill"))]))
    assert limited.op(ctx, w) == Pending(1.0)
    ctx.time = 1.0
    assert limited.op(ctx, w) == Invocation("kill")
    assert limited.op(ctx, w) is None  # the Seq has nothing more
    waiting = TimeLimit(2.0, Sleep(5.0))
    ctx.time = 0.0
    assert waiting.op(ctx, w) == Pending(2.0)  # the limit comes before the sleep ends
    ctx.time = 2.0
    assert waiting.op(ctx, w) is None


def test_cycle_repeats_a_fresh_schedule() -> None:
    ctx = Context(random.Random(SEED), [Worker(NEMESIS, NEMESIS)])
    w = Worker("nemesis", NEMESIS)
    gen = Cycle(lambda: Seq([Once(Invocation("kill")), Once(Invocation("restart"))]))
    assert [gen.op(ctx, w).f for _ in range(5)] == [  # type: ignore[union-attr]
        "kill", "restart", "kill", "restart", "kill"
    ]  # fmt: skip


def test_per_key_groups_workers_on_independent_keys_and_rotates(tmp_path: Path) -> None:
    per_key = PerKey(2, lambda key: Limit(10, Fn(lambda c, w: Invocation("write", 1))))
    ops = interpret(Clients(Limit(60, per_key)), tmp_path, concurrency=4)
    invokes = [op for op in ops if op.type == "invoke"]
    by_key: dict[Any, set[int]] = {}
    for op in invokes:
        by_key.setdefault(op.key, set()).add(int(op.process) // 2)
    assert all(len(groups) == 1 for groups in by_key.values()), by_key
    assert {len([o for o in invokes if o.key == k]) for k in by_key} == {10}
    assert per_key.keys == sorted(by_key, key=lambda k: int(k[1:]))


def test_each_once_retries_what_failed(tmp_path: Path) -> None:
    tries: dict[Any, int] = {}

    class Flaky(MemoryClient):
        async def invoke(self, op: Invocation) -> Completion:
            tries[op.key] = tries.get(op.key, 0) + 1
            if op.key == "b" and tries[op.key] < 3:
                return Completion("fail", error="timeout")
            return Completion("ok", 0)

    async def open_client(slot: int) -> Client:
        return Flaky({}, [0])

    async def main() -> None:
        recorder = Recorder(tmp_path / "h.jsonl")
        gen = Clients(EachOnce(lambda: ["a", "b", "c"], lambda k: Invocation("read", key=k)))
        await Interpreter(gen, 2, open_client, NoNemesis(), None, recorder,  # type: ignore[arg-type]
                          random.Random(SEED)).run()  # fmt: skip

    asyncio.run(main())
    assert tries == {"a": 1, "b": 3, "c": 1}


def test_each_once_with_lanes_does_every_item_once_in_every_lane_in_rounds(
    tmp_path: Path,
) -> None:
    keys = [f"k{i}" for i in range(7)]
    gen = EachOnce(lambda: keys, lambda k: Invocation("read", key=k), lanes=3)
    ops = interpret(Clients(gen), tmp_path, concurrency=5)
    invokes = [op for op in ops if op.type == "invoke"]
    by_lane: dict[int, list[Any]] = {}
    for op in invokes:  # no op ends info here, so a process is its slot
        by_lane.setdefault(int(op.process) % 3, []).append(op.key)
    assert sorted(by_lane) == [0, 1, 2]
    for lane, done in by_lane.items():
        assert sorted(done) == keys, f"lane {lane}: {done}"
        # Round r gives item i to lane (i + r) % 3: the first round's items come first.
        first = [k for i, k in enumerate(keys) if i % 3 == lane]
        assert done[: len(first)] == first, f"lane {lane}: {done}"
    assert len(invokes) == 3 * len(keys)


def test_each_once_refuses_no_lanes() -> None:
    with pytest.raises(ValueError, match="lanes"):
        EachOnce(lambda: [], lambda k: Invocation("read", key=k), lanes=0)


def test_await_waits_for_its_condition_before_the_next_phase(tmp_path: Path) -> None:
    flag = asyncio.Event()
    order: list[str] = []

    async def condition() -> str:
        await flag.wait()
        order.append("ready")
        return "ready"

    def release(ctx: Context, worker: Worker) -> Invocation:
        asyncio.get_running_loop().call_later(0.05, flag.set)
        order.append("release")
        return Invocation("write", 1, "k")

    waiting = Await(condition, timeout=10)
    gen = Phases([Clients(Limit(1, Fn(release))), waiting, Clients(Limit(1, Fn(read)))])
    ops = interpret(gen, tmp_path, concurrency=2)
    assert order == ["release", "ready"] and waiting.outcome == "ready"
    assert [op.f for op in ops if op.type == "invoke"] == ["write", "read"]


def test_clients_and_nemesis_get_only_their_own_operations() -> None:
    gen = Both([Clients(Fn(read)), Nemesis(Once(Invocation("kill")))])
    ctx = Context(random.Random(SEED), [Worker(0, 0), Worker("nemesis", NEMESIS)])
    assert gen.op(ctx, Worker("nemesis", NEMESIS)) == Invocation("kill")
    assert gen.op(ctx, Worker("nemesis", NEMESIS)) is None
    assert gen.op(ctx, Worker(0, 0)) == Invocation("read", key="k")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_register_writes_are_unique_and_cas_expects_recent_values(seed: int) -> None:
    workload = Register(concurrency=1, ops_per_key=10_000)
    gen = workload.generator()
    ctx = Context(random.Random(seed), [Worker(0, 0)])
    written: list[int] = []
    for _ in range(2000):
        op = gen.op(ctx, Worker(0, 0))
        assert isinstance(op, Invocation), f"seed {seed}"
        if op.f == "write":
            written.append(op.value)
        elif op.f == "cas":
            assert op.value[0] in [0, *written[-3:]] or op.value[0] in written, f"seed {seed}"
            written.append(op.value[1])
    assert len(written) == len(set(written)), f"seed {seed}: a value was written twice"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_register_writers_update_and_the_other_workers_of_a_key_read(seed: int) -> None:
    workload = Register(concurrency=10, group_size=5, writers=1, ops_per_key=20)
    gen = workload.generator()
    ctx = Context(random.Random(seed), [Worker(i, i) for i in range(10)])
    writers: dict[object, set[int]] = {}
    readers: dict[object, set[int]] = {}
    for turn in range(400):
        slot = turn % 10
        op = gen.op(ctx, Worker(slot, slot))
        assert isinstance(op, Invocation), f"seed {seed}"
        (readers if op.f == "read" else writers).setdefault(op.key, set()).add(slot)
    for key, slots in writers.items():
        assert len(slots) == 1, f"seed {seed}: key {key} written by {slots}"
        group = range(5) if min(slots) < 5 else range(5, 10)
        assert readers[key] <= set(group) - slots, f"seed {seed}: key {key}"
    # The writer moves over the keys: over a group's keys, several nodes take writes.
    assert len({min(s) for s in writers.values() if min(s) < 5}) >= 3, f"seed {seed}: {writers}"


def test_register_writers_must_leave_a_reader() -> None:
    with pytest.raises(ValueError, match="writers: expected a whole number from 0 to 4"):
        Register(concurrency=5, writers=5)


def test_the_run_plans_final_reads_through_every_node_before_the_cluster_is_up() -> None:
    """Docker's and SSH's clusters have no nodes until they are up, and the run is planned
    before that: the final phase takes the node count from the spec."""
    from harness.runner import plan
    from harness.spec import parse
    from harness.system import make_system
    from harness.workload import make_workload
    from nemesis import make_nemesis

    spec = parse({"name": "lanes", "nodes": 5, "concurrency": 10,
                  "workload": {"name": "register", "group_size": 5}})

    class NotUp:
        nodes: tuple[Any, ...] = ()  # as a DockerCluster before up()

    workload = make_workload("register", spec.concurrency, spec.workload.options)
    gen, _ = plan(spec, workload, make_nemesis([], {}, random.Random(SEED)),
                  make_system("store", {}), NotUp())  # type: ignore[arg-type]
    final = gen.gens[-1].gen.gen  # Phases -> TimeLimit -> Route -> EachOnce
    assert isinstance(final, EachOnce) and final.lanes == 5
