"""The interpreter: workers asking a generator for operations and recording them.

Every client slot and the nemesis is one asyncio task. A task asks the generator for its
next operation, records the invocation, performs it (a client request, or a fault),
records the completion, tells the generator, and asks again. An operation that ends
`info` retires its process: the slot goes on as process + concurrency, with a new
client (Jepsen's rule, so that a process never has two operations open). `stop` ends
the run gracefully: no new operations; those in flight finish (each client request is
bounded by its timeout).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from checker.history import NEMESIS
from harness.client import Client
from harness.generator import NEMESIS_SLOT, Context, Generator, Invocation, Pending, Worker
from harness.ops import Completion
from harness.recorder import Recorder
from harness.system import Cluster
from nemesis.core import Fault, FaultOp

log = logging.getLogger("splitbrain.interpreter")


@dataclass
class Interpreter:
    gen: Generator
    concurrency: int
    open_client: Callable[[int], Awaitable[Client]]  # slot -> a client opened on its node
    nemesis: Fault
    cluster: Cluster
    recorder: Recorder
    rng: random.Random
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _spawned: set[asyncio.Future[object]] = field(default_factory=set)

    async def run(self) -> None:
        workers = [Worker(slot, slot) for slot in range(self.concurrency)]
        workers.append(Worker(NEMESIS_SLOT, NEMESIS))
        ctx = Context(self.rng, workers, spawn=self._spawn, wake=self._wake)
        stopping = asyncio.ensure_future(self._wake_on_stop())
        try:
            await asyncio.gather(*(self._work(ctx, w) for w in workers))
        finally:
            stopping.cancel()
            for task in self._spawned:
                task.cancel()

    def _spawn(self, coroutine: Awaitable[object]) -> asyncio.Future[object]:
        task = asyncio.ensure_future(coroutine)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        return task

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wake_on_stop(self) -> None:
        await self.stop.wait()
        self._wake()

    async def _pause(self, pending: Pending) -> None:
        changed = self._changed
        timeout = None
        if pending.until is not None:
            timeout = pending.until - self.recorder.seconds()
            if timeout <= 0:
                return
        try:
            async with asyncio.timeout(timeout):
                await changed.wait()
        except TimeoutError:
            pass

    async def _work(self, ctx: Context, worker: Worker) -> None:
        client = None if worker.is_nemesis else await self.open_client(int(worker.slot))
        try:
            while not self.stop.is_set():
                ctx.time = self.recorder.seconds()
                found = self.gen.op(ctx, worker)
                if found is None:
                    return
                if isinstance(found, Pending):
                    await self._pause(found)
                    continue
                done = await self._perform(ctx, worker, client, found)
                self.gen.update(ctx, worker, found, done)
                self._wake()
                if client is not None and done.type == "info":
                    await client.close()
                    worker.process = int(worker.process) + self.concurrency
                    client = await self.open_client(int(worker.slot))
        finally:
            if client is not None:
                await client.close()

    async def _perform(
        self, ctx: Context, worker: Worker, client: Client | None, op: Invocation
    ) -> Completion:
        self.recorder.invoke(worker.process, op)
        ctx.in_flight += 1
        try:
            if client is None:
                did = await self.nemesis.invoke(self.cluster, FaultOp(op.f, op.value))
                done = Completion("info", did.value, did.error)
            else:
                done = await client.invoke(op)
        except Exception as e:  # a bug in a client or nemesis: recorded, the run goes on
            log.exception("process %s: %s %r raised", worker.process, op.f, op.value)
            done = Completion("info", op.value, f"{type(e).__name__}: {e}")
        finally:
            ctx.in_flight -= 1
        self.recorder.complete(worker.process, op, done)
        return done
