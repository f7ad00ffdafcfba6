"""One consistency test, end to end (docs/harness.md):

spec -> image -> cluster up -> clients and nemesis for the time limit -> heal -> wait
until the cluster answers -> final quorum reads -> node logs -> cluster down -> checkers
-> results.json, a verdict and an exit code.

Whatever happens after the cluster is up (an exception, Ctrl-C, SIGTERM), the faults are
healed, the node logs collected and everything the run made removed; what was recorded
is still checked, and the results say the run was interrupted. A second Ctrl-C skips
the rest of the waiting but not the teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from checker.history import NEMESIS
from harness.check import check_history
from harness.client import Client
from harness.generator import (
    Await,
    Both,
    Clients,
    Generator,
    Nemesis,
    Once,
    Phases,
    TimeLimit,
)
from harness.interpreter import Interpreter
from harness.labels import owner_here
from harness.ops import Completion, Invocation
from harness.progress import Progress, Snapshot
from harness.recorder import Recorder
from harness.results import (
    EXIT_ERROR,
    RunResults,
    exit_code,
    make_run_dir,
    write_spec,
)
from harness.spec import Spec
from harness.system import Cluster, System, collect_logs, load_class, make_system
from harness.workload import Workload, make_workload
from nemesis import clock, make_nemesis
from nemesis.core import FaultRefused
from nemesis.core import Nemesis as NemesisProtocol
from nemesis.schedule import schedule_for

log = logging.getLogger("splitbrain")
READY_S = 60.0  # from the nodes' start to every node healthy and one leader
RECOVER_S = 30.0  # after the final heal, until the cluster answers again
FINAL_S = 60.0  # for the final reads, however many keys and however sick the cluster


class SetupError(RuntimeError):
    """The test could not start (no image, no Docker, a cluster that never got ready)."""


@dataclass
class Outcome:
    results: RunResults
    directory: Path
    exit_code: int


async def wait_ready(system: System, cluster: Cluster, timeout: float) -> str:
    """Until every node is healthy and one leader is agreed on; its name."""
    deadline = time.monotonic() + timeout
    while True:
        healthy = await asyncio.gather(*(system.healthy(n) for n in cluster.nodes))
        if all(healthy):
            leader = await system.leader(cluster.nodes)
            if leader is not None:
                return leader
        if time.monotonic() > deadline:
            states = ", ".join(
                f"{n.name}: {'healthy' if h else 'not healthy'}"
                for n, h in zip(cluster.nodes, healthy, strict=True)
            )
            raise TimeoutError(f"no healthy cluster with a leader after {timeout:g} s ({states})")
        await asyncio.sleep(0.1)


def make_cluster(
    spec: Spec, system: System, run_id: str, progress: Progress, run_dir: Path
) -> tuple[Cluster, dict[str, Any] | None]:
    if spec.backend == "local":
        from harness.local import LocalCluster

        return LocalCluster(spec.nodes, system, run_dir / "data"), None
    from harness.docker import DockerCluster, connect, remove_leftovers
    from harness.image import ImageError, ensure_image

    try:
        client = connect()
        remove_leftovers(client, progress.say)
        image = ensure_image(progress.say, client=client)
    except (ImageError, RuntimeError) as e:
        raise SetupError(str(e)) from None
    env = clock.environment() if "clock" in spec.nemesis.faults and system.libc_clock else {}
    cluster = DockerCluster(
        system, spec.nodes, run_id, image.tag, owner_here(), spec.subnet_pool, client, env
    )
    return cluster, image.to_json()


def plan(
    spec: Spec, workload: Workload, nemesis: NemesisProtocol, system: System, cluster: Cluster
) -> tuple[Generator, Await]:
    """The whole run as one generator: the main phase, the final heal, waiting for the
    cluster, the final reads."""
    main: list[Generator] = [Clients(workload.generator())]
    if nemesis.fs:
        main.append(Nemesis(schedule_for(nemesis, spec.nemesis.schedule)))
    recovered = Await(lambda: wait_ready(system, cluster, RECOVER_S), RECOVER_S + 5)
    phases: list[Generator] = [TimeLimit(spec.time_limit, Both(main))]
    if nemesis.fs:
        phases.append(Nemesis(Once(nemesis.recover())))
    phases += [recovered, TimeLimit(FINAL_S, Clients(workload.final()))]
    return Phases(phases), recovered


@contextlib.contextmanager
def file_log(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        handler.close()


def run(spec: Spec, progress: Progress | None = None) -> Outcome:
    """Run the test the spec describes; the results, where they are, and the exit code."""
    progress = progress or Progress()
    spec = spec.with_seed()
    run_dir = make_run_dir(Path(spec.results), spec.name)
    run_id = f"{time.strftime('%H%M%S')}{secrets.token_hex(2)}"
    results = RunResults(spec.name, run_id, spec, time.time())
    results.files = {
        "spec": "spec.yaml", "history": "history.jsonl", "results": "results.json",
        "harness_log": "harness.log", "node_logs": "nodes/", "report": "report.html",
    }  # fmt: skip
    write_spec(run_dir / "spec.yaml", spec)
    progress.say(
        f"{spec.name}: {spec.system} x{spec.nodes} on {spec.backend}, "
        f"{spec.workload.name} workload, concurrency {spec.concurrency}, "
        f"{spec.time_limit:g} s, faults: {', '.join(spec.nemesis.faults) or 'none'}, "
        f"seed {spec.seed}"
    )
    progress.say(f"results: {run_dir}")
    with file_log(run_dir / "harness.log"):
        log.info("run %s of %s, seed %s, in %s", run_id, spec.name, spec.seed, run_dir)
        try:
            _run(spec, run_id, run_dir, results, progress)
        except SetupError as e:
            results.error = str(e)
            log.error("setup failed: %s", e)
        except KeyboardInterrupt:
            results.interrupted = True
            results.error = "interrupted before the test began"
            log.error(results.error)
        except Exception as e:
            results.error = f"{type(e).__name__}: {e}"
            log.exception("the run failed")
        finally:
            results.ended = time.time()
            results.write(run_dir / "results.json")
        _report(run_dir, progress)
    # An invalid history is a finding even from a run that failed; otherwise a harness
    # error (before or during the run) is the answer.
    code = exit_code(results.verdict, results.interrupted)
    if results.error and results.verdict is not False:
        code = EXIT_ERROR
    return Outcome(results, run_dir, code)


def _report(run_dir: Path, progress: Progress) -> None:
    """report.html, from what was written; a report that fails to build fails nothing else."""
    from harness.report import build_report

    try:
        path = build_report(run_dir)
    except Exception:
        log.exception("the report could not be built")
        progress.say("the report could not be built (see harness.log)")
        return
    log.info("report: %s", path)


class _Signals:
    """SIGINT / SIGTERM: the first stops the run gracefully, the second hurries it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event, progress: Progress):
        self.loop, self.stop, self.progress = loop, stop, progress
        self.count = 0
        self.task: asyncio.Task[Any] | None = None

    def __enter__(self) -> _Signals:
        self.previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in self.previous:
            self.loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            self.loop.remove_signal_handler(sig)
            signal.signal(sig, handler)

    def _on_signal(self, sig: int) -> None:
        self.count += 1
        name = signal.Signals(sig).name
        if self.count == 1:
            self.progress.say(
                f"{name}: stopping; healing, tearing down and checking what was recorded"
            )
            self.stop.set()
        elif self.task is not None:
            self.progress.say(f"{name} again: no more waiting; tearing down")
            self.task.cancel()


def _run(spec: Spec, run_id: str, run_dir: Path, results: RunResults, progress: Progress) -> None:
    rng = random.Random(spec.seed)
    try:
        system = make_system(spec.system, spec.system_options)
    except ValueError as e:
        raise SetupError(str(e)) from None
    results.system = {"name": spec.system}
    workload = make_workload(spec.workload.name, spec.concurrency, spec.workload.options)
    try:
        nemesis = make_nemesis(
            spec.nemesis.faults, spec.nemesis.options, random.Random(rng.random())
        )
        client_class = None if spec.client is None else load_class(spec.client, "client")
    except ValueError as e:
        raise SetupError(str(e)) from None
    cluster, image = make_cluster(spec, system, run_id, progress, run_dir)
    results.image = image
    try:
        gen, recovered = plan(spec, workload, nemesis, system, cluster)
    except ValueError as e:
        raise SetupError(str(e)) from None
    run = Run(spec, system, cluster, workload, nemesis, gen, recovered, client_class)
    recorder = Recorder(run_dir / "history.jsonl")
    try:
        uvloop.run(_drive(run, recorder, results, rng, progress))
    except SetupError:
        raise
    except Exception as e:  # the harness failed mid-run: what was recorded is still checked
        results.error = f"{type(e).__name__}: {e}"
        log.exception("the run failed")
    finally:
        recorder.close()
        progress.stop()
        with contextlib.suppress(Exception):
            collect_logs(cluster, run_dir / "nodes")
        progress.say("tearing down the cluster")
        cluster.down()
        log.info("cluster down")
    if recorder.events:
        _check(spec, run_dir, recorder, results, progress)


@dataclass
class Run:
    """What a run is made of, ready before anything starts."""

    spec: Spec
    system: System
    cluster: Cluster
    workload: Workload
    nemesis: NemesisProtocol
    gen: Generator
    recovered: Await
    client_class: type | None


async def _drive(
    run: Run, recorder: Recorder, results: RunResults, rng: random.Random, progress: Progress
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with _Signals(loop, stop, progress) as signals:
        signals.task = asyncio.current_task()
        try:
            await _drive_inner(run, recorder, results, rng, progress, stop)
        except asyncio.CancelledError:
            results.interrupted = True
            results.notes.append("a second signal cut the run short")
        if stop.is_set():
            results.interrupted = True


async def _drive_inner(
    run: Run, recorder: Recorder, results: RunResults, rng: random.Random,
    progress: Progress, stop: asyncio.Event,
) -> None:  # fmt: skip
    spec, system, cluster, nemesis = run.spec, run.system, run.cluster, run.nemesis
    progress.say(f"starting {spec.nodes} {spec.system} nodes")
    started = time.monotonic()
    await asyncio.to_thread(cluster.up)
    results.cluster = cluster.describe()
    try:
        leader = await wait_ready(system, cluster, READY_S)
    except TimeoutError as e:
        raise SetupError(f"the cluster never got ready: {e}") from None
    version = await system.version(cluster.nodes[0])
    results.system = {"name": spec.system, "version": version}
    progress.say(
        f"cluster ready in {time.monotonic() - started:.1f} s, leader {leader}, version {version}"
    )
    log.info("cluster %s ready, leader %s", results.cluster, leader)
    try:
        await nemesis.prepare(cluster)
    except FaultRefused as e:
        raise SetupError(f"a fault cannot be done here: {e}") from None

    async def open_client(slot: int) -> Client:
        node = cluster.nodes[slot % len(cluster.nodes)]
        if run.client_class is not None:
            client = run.client_class()
        else:
            client = system.client(run.workload.client_options())
        await client.open(node.client_node)
        return client

    interpreter = Interpreter(
        run.gen,
        spec.concurrency,
        open_client,
        nemesis,
        cluster,
        recorder,
        random.Random(rng.random()),
        stop,
    )
    recorder.begin()
    progress.start()
    ticker = asyncio.ensure_future(_tick(progress, recorder, nemesis, spec.time_limit))
    try:
        await interpreter.run()
    finally:
        ticker.cancel()
        progress.stop()
        if nemesis.in_force():  # interrupted, or the schedule's heal did not finish
            progress.say(f"healing: {', '.join(nemesis.in_force())}")
            heal = Invocation("heal")
            recorder.invoke(NEMESIS, heal)
            try:
                done = Completion("info", await nemesis.heal(cluster))
            except Exception as e:  # recorded; the teardown removes the nodes anyway
                log.exception("the final heal failed")
                results.notes.append(f"the final heal failed: {e}")
                done = Completion("info", error=str(e))
            recorder.complete(NEMESIS, heal, done)
    if isinstance(run.recovered.outcome, BaseException):
        results.notes.append(f"after the final heal: {run.recovered.outcome}")


async def _tick(
    progress: Progress, recorder: Recorder, nemesis: NemesisProtocol, limit: float
) -> None:
    while True:
        progress.update(
            lambda: Snapshot(recorder.seconds(), limit, recorder.tally, nemesis.in_force())
        )
        await asyncio.sleep(0.5)


def _check(
    spec: Spec, run_dir: Path, recorder: Recorder, results: RunResults, progress: Progress
) -> None:
    progress.say(f"checking {recorder.tally.invoked} operations")
    check_history(spec, run_dir / "history.jsonl", results)
