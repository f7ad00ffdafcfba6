"""One consistency test, end to end (docs/harness.md):

spec -> image -> cluster up -> clients and nemesis for the time limit -> heal -> wait
until the cluster answers -> final quorum reads -> node logs (and data directories) ->
cluster down -> checkers -> results.json, a verdict and an exit code. The check runs after
the cluster is gone, so the data directories are copied first, and dropped once the run
is found valid when the spec's `collect_data` is `invalid`.

Whatever happens after the cluster is up (an exception, Ctrl-C, SIGTERM), the faults are
healed, the node logs collected and everything the run made removed; what was recorded
is still checked, and the results say the run was interrupted. A second Ctrl-C skips
the rest of the waiting but not the teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import secrets
import signal
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from checker.history import NEMESIS
from checker.verdict import Verdict
from harness.check import check_history
from harness.client import Client
from harness.generator import (
    Await,
    Both,
    Clients,
    Generator,
    Nemesis,
    Phases,
    TimeLimit,
)
from harness.interpreter import Interpreter
from harness.labels import owner_here
from harness.ops import Completion, Invocation
from harness.preflight import preflight
from harness.progress import Progress, Snapshot
from harness.recorder import Recorder
from harness.results import (
    ResultsError,
    RunResults,
    drop_torn_last_line,
    make_run_dir,
    run_exit_code,
    write_spec,
)
from harness.schedule import final_recovery, schedule_for
from harness.spec import Spec
from harness.system import (
    Cluster,
    System,
    client_node,
    collect_data,
    collect_logs,
    drop_data,
    load_class,
    make_system,
)
from harness.workload import Workload, make_workload
from nemesis import clock, make_nemesis
from nemesis.core import Fault as NemesisProtocol
from nemesis.core import FaultRefused

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

        return LocalCluster(spec.nodes, system), None  # its own temporary folder, gone at down
    if spec.backend == "ssh":
        return ssh_cluster(spec, system, run_id, progress), None
    from harness.docker import DockerCluster, connect, remove_leftovers
    from harness.image import ImageError, ensure_helper, ensure_node_image
    from harness.system import ContainerSystem

    if not isinstance(system, ContainerSystem):
        raise SetupError(
            f"the system {spec.system!r} cannot run in Docker: it does not say its image, data "
            "directory, ports and environment (harness.system.ContainerSystem, "
            "docs/testing-your-system.md)"
        )
    try:
        client = connect()
        remove_leftovers(client, progress.say)
        image = ensure_node_image(system.image, client, progress.say)
        helper = ensure_helper(client, progress.say)
    except (ImageError, RuntimeError) as e:
        raise SetupError(str(e)) from None
    env = clock.environment() if "clock" in spec.nemesis.faults and system.libc_clock else {}
    cluster = DockerCluster(
        system, spec.nodes, run_id, image.tag, owner_here(), spec.subnet_pool, client, env,
        helper.tag,
    )  # fmt: skip
    return cluster, image.to_json()


def ssh_cluster(spec: Spec, system: System, run_id: str, progress: Progress) -> Cluster:
    """The hosts connected, checked, and our store installed where needed."""
    from harness.ssh import SshCluster, SshError
    from harness.system import Store

    faults = set(spec.nemesis.faults)
    env = clock.environment() if "clock" in faults and system.libc_clock else {}
    venv = isinstance(system, Store) or "delay" in faults
    try:
        cluster = SshCluster(system, spec.ssh, run_id, progress.say, env, venv)
        cluster.prepare()
    except SshError as e:
        raise SetupError(str(e)) from None
    return cluster


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
        phases.append(Nemesis(final_recovery(nemesis)))
    # The spec's node count: Docker's and SSH's clusters have no nodes until they are up.
    phases += [recovered, TimeLimit(FINAL_S, Clients(workload.final(spec.nodes)))]
    return Phases(phases), recovered


class _LogFile(logging.FileHandler):
    """harness.log; a disk that refuses it is said once on stderr (the run's own error
    says the rest), not with a traceback per line."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            print(f"splitbrain: {self.baseFilename} cannot be written; the log stops here",
                  file=sys.stderr)  # fmt: skip


@contextlib.contextmanager
def file_log(path: Path) -> Iterator[None]:
    handler = _LogFile(path)
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
    """Run the test the spec describes; the results, where they are, and the exit code.

    Raises SpecError, before anything is made, if what the spec names cannot be built, and
    ResultsError, before anything starts, when the results folder cannot be made."""
    progress = progress or Progress()
    preflight(spec)
    spec = spec.with_seed()
    run_dir = make_run_dir(Path(spec.results), spec.name)
    run_id = f"{time.strftime('%H%M%S')}{secrets.token_hex(2)}"
    results = RunResults(spec.name, run_id, spec, time.time())
    results.files = {
        "spec": "spec.yaml", "history": "history.jsonl", "results": "results.json",
        "harness_log": "harness.log", "node_logs": "nodes/", "report": "report.html",
    }  # fmt: skip
    try:
        write_spec(run_dir / "spec.yaml", spec)
    except OSError as e:
        raise ResultsError(f"{run_dir / 'spec.yaml'}: {e.strerror or e}") from None
    progress.say(
        f"{spec.name}: {spec.system} x{spec.nodes} on {spec.backend}, "
        f"{spec.workload.name} workload, concurrency {spec.concurrency}, "
        f"{spec.time_limit:g} s, faults: {', '.join(spec.nemesis.faults) or 'none'}, "
        f"seed {spec.seed}"
    )
    progress.say(f"results: {run_dir}")
    with file_log(run_dir / "harness.log"), Interrupts(results, progress) as interrupts:
        log.info("run %s of %s, seed %s, in %s", run_id, spec.name, spec.seed, run_dir)
        try:
            _run(spec, run_id, run_dir, results, progress, interrupts)
        except SetupError as e:
            results.error = str(e)
            log.error("setup failed: %s", e)
        except KeyboardInterrupt:
            results.interrupted = True
            if interrupts.phase is Phase.CHECK:
                note = "the check was stopped by a second signal: no verdict"
                if results.verdict is not Verdict.INVALID:  # a finding made stands; else none
                    results.checkers.clear()
                    results.stats = None
            elif interrupts.phase is Phase.SETUP:
                note = "interrupted before the cluster was up: nothing ran"
            else:
                note = "interrupted"
            results.notes.append(note)
            log.error(note)
        except Exception as e:
            failure = _describe_failure(e, run_dir)
            if results.error is None:
                results.error = failure
            else:  # the first error is the cause; this one is said too
                results.notes.append(f"then: {failure}")
            log.exception("the run failed")
        finally:
            results.ended = time.time()
            _write_results(results, run_dir)
        if not _report(run_dir, progress, interrupts) and (run_dir / "results.json").is_file():
            results.files.pop("report", None)
            _write_results(results, run_dir)
    return Outcome(results, run_dir, run_exit_code(results))


def _write_results(results: RunResults, run_dir: Path) -> None:
    """results.json; a disk that refuses it is the run's error, not a crash."""
    try:
        results.write(run_dir / "results.json")
    except OSError as e:
        results.error = results.error or f"results.json could not be written: {e}"
        log.error("results.json could not be written: %s", e)


def _report(run_dir: Path, progress: Progress, interrupts: Interrupts) -> bool:
    """report.html, from what was written; a report that fails to build (or is
    interrupted) fails nothing else. Whether it was built."""
    from harness.report import build_report

    if not (run_dir / "results.json").is_file():
        return False
    interrupts.phase = Phase.REPORT
    log.info("building the report")
    try:
        path = build_report(run_dir)
    except KeyboardInterrupt:
        interrupts.results.interrupted = True
        interrupts.results.notes.append(
            f"interrupted while the report was built: `splitbrain report {run_dir}` builds it"
        )
        log.error("interrupted while the report was built")
        return False
    except Exception:
        log.exception("the report could not be built")
        progress.say("the report could not be built (see harness.log)")
        return False
    log.info("report: %s", path)
    return True


class Phase(enum.Enum):
    SETUP = "setup"  # before the cluster is up: a signal stops the run at once
    DRIVE = "drive"  # the event loop's own handlers (_Signals) are in charge; while the
    # loop starts or ends around them, a signal is noted and the drive stops at once
    TEARDOWN = "teardown"  # heal, logs, cluster down: signals wait for it to finish
    CHECK = "check"  # the first signal lets the check finish, a second stops it
    REPORT = "report"  # a signal stops the report (`splitbrain report` rebuilds it)


class Interrupts:
    """SIGINT / SIGTERM outside the event loop, by phase (see Phase). Whatever the phase,
    a signal never skips the teardown, and a run that got one says `interrupted`."""

    def __init__(self, results: RunResults, progress: Progress) -> None:
        self.results, self.progress = results, progress
        self.phase = Phase.SETUP
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: object) -> None:
        name = signal.Signals(sig).name
        log.warning("%s during %s", name, self.phase.value)
        if self.phase is Phase.TEARDOWN:
            self.results.interrupted = True
            self._say(f"{name}: the cluster is being torn down; that finishes first")
            return
        if self.phase is Phase.DRIVE:  # the loop is starting (its handlers see this) or ending
            self.results.interrupted = True
            self._say(f"{name}: stopping; healing, tearing down and checking what was recorded")
            return
        if self.phase is Phase.CHECK and not self.results.interrupted:
            self.results.interrupted = True
            self.results.notes.append(f"{name} during the check: the check was let finish")
            self._say(
                f"{name}: the check of what was recorded goes on; {name} again stops it "
                "(the verdict is then unknown)"
            )
            return
        self.results.interrupted = True
        raise KeyboardInterrupt

    def _say(self, message: str) -> None:
        """Straight to the stream: the handler may run in the middle of a console print,
        which printing through the console again would repeat."""
        if not self.progress.quiet:
            self.progress.stream.write(message + "\n")
            self.progress.stream.flush()


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


def _run(
    spec: Spec, run_id: str, run_dir: Path, results: RunResults, progress: Progress,
    interrupts: Interrupts,
) -> None:  # fmt: skip
    rng = random.Random(spec.seed)
    workload = make_workload(spec.workload.name, spec.concurrency, spec.workload.options)
    try:
        system = make_system(spec.system, spec.system_options, workload.api)
    except ValueError as e:
        raise SetupError(str(e)) from None
    results.system = {"name": spec.system}
    try:
        nemesis = make_nemesis(
            spec.nemesis.faults, spec.nemesis.options, random.Random(rng.random())
        )
        client_class = None if spec.client is None else load_class(spec.client, "client")
    except ValueError as e:
        raise SetupError(str(e)) from None
    cluster, image = make_cluster(spec, system, run_id, progress, run_dir)
    recorder: Recorder | None = None
    try:
        results.image = image
        try:
            gen, recovered = plan(spec, workload, nemesis, system, cluster)
        except ValueError as e:
            raise SetupError(str(e)) from None
        run = Run(spec, system, cluster, workload, nemesis, gen, recovered, client_class)
        recorder = Recorder(run_dir / "history.jsonl")
        interrupts.phase = Phase.DRIVE
        uvloop.run(_drive(run, recorder, results, rng, progress))
    except (SetupError, KeyboardInterrupt):
        raise
    except Exception as e:  # the harness failed mid-run: what was recorded is still checked
        results.error = _describe_failure(e, run_dir)
        log.exception("the run failed")
    finally:
        interrupts.phase = Phase.TEARDOWN
        _teardown(cluster, recorder, run_dir, results, progress, spec.collect_data != "never")
    if recorder is not None and recorder.events:
        interrupts.phase = Phase.CHECK
        _check(spec, run_dir, recorder, results, progress)
    if spec.collect_data == "invalid" and results.verdict is Verdict.VALID:
        try:
            dropped = drop_data(run_dir / "nodes")
        except OSError as e:  # a valid run stays valid; the copies are said to be there
            results.notes.append(f"the data directories could not be dropped: {e}")
            log.error("the data directories could not be dropped: %s", e)
        else:
            log.info("valid: %d data directories dropped (collect_data: invalid)", dropped)


def _describe_failure(e: Exception, run_dir: Path) -> str:
    """One line for results.json and the terminal."""
    if isinstance(e, OSError) and e.filename is None and e.strerror:
        return f"cannot write the results in {run_dir}: {e.strerror}"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return f"{type(e).__name__}: {e}"


def _teardown(
    cluster: Cluster, recorder: Recorder | None, run_dir: Path, results: RunResults,
    progress: Progress, data: bool,
) -> None:  # fmt: skip
    """Whatever failed before, the cluster is removed; what was recorded stays on disk,
    with the node logs and (`data`) the nodes' data directories."""
    progress.stop()
    try:
        if recorder is not None:
            try:
                recorder.close()
            except OSError as e:  # the disk refused the last lines: said, not fatal
                results.error = results.error or _describe_failure(e, run_dir)
                log.error("the history could not be closed: %s", e)
            if results.error is not None:
                dropped = drop_torn_last_line(recorder.path)
                if dropped:
                    log.warning("the history ended in part of a line: %d bytes dropped", dropped)
        try:
            collect_logs(cluster, run_dir / "nodes")
        except Exception as e:
            results.notes.append(f"the node logs could not be saved: {e}")
            log.error("the node logs could not be saved: %s", e)
        if data:
            progress.say("copying the nodes' data directories")
            for problem in collect_data(cluster, run_dir / "nodes"):
                results.notes.append(f"a data directory could not be copied: {problem}")
                log.error("a data directory could not be copied: %s", problem)
    finally:
        progress.say("tearing down the cluster")
        try:
            cluster.down()
        except Exception as e:  # said, and what was recorded is still checked
            failure = f"the cluster could not be removed: {type(e).__name__}: {e}"
            results.error = results.error or failure
            log.exception(failure)
        else:
            log.info("cluster down")


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
        if results.interrupted:  # a signal came while the loop was starting
            stop.set()
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
    stopped = "interrupted while the cluster started: no operation ran, nothing to check"
    if stop.is_set():
        results.notes.append(stopped)
        return
    try:
        leader = await _unless_stopped(wait_ready(system, cluster, READY_S), stop)
    except TimeoutError as e:
        raise SetupError(f"the cluster never got ready: {e}") from None
    if leader is None:
        results.notes.append(stopped)
        return
    version = await system.version(cluster.nodes[0])
    results.system = {"name": spec.system, "version": version}
    progress.say(
        f"cluster ready in {time.monotonic() - started:.1f} s, leader {leader}, version {version}"
    )
    log.info("cluster %s ready, leader %s", results.cluster, leader)
    try:
        await nemesis.setup(cluster)
    except FaultRefused as e:
        raise SetupError(f"a fault cannot be done here: {e}") from None

    async def open_client(slot: int) -> Client:
        node = cluster.nodes[slot % len(cluster.nodes)]
        if run.client_class is not None:
            client = run.client_class()
        else:
            client = system.client(run.workload.client_options())
        await client.open(client_node(node))
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
            try:
                recorder.invoke(NEMESIS, heal)
            except OSError:  # the history cannot be written (the run's error): heal anyway
                recorded = False
            else:
                recorded = True
            try:
                done = Completion("info", await nemesis.teardown(cluster))
            except Exception as e:  # recorded; the teardown removes the nodes anyway
                log.exception("the final heal failed")
                results.notes.append(f"the final heal failed: {e}")
                done = Completion("info", error=str(e))
            if recorded:
                with contextlib.suppress(OSError):
                    recorder.complete(NEMESIS, heal, done)
    if isinstance(run.recovered.outcome, BaseException):
        results.notes.append(f"after the final heal: {run.recovered.outcome}")


async def _unless_stopped(ready: Coroutine[Any, Any, str], stop: asyncio.Event) -> str | None:
    """What ready returns, or None as soon as a signal asks the run to stop."""
    waiting = asyncio.ensure_future(ready)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not waiting.done():
            waiting.cancel()
    return waiting.result() if waiting.done() and not waiting.cancelled() else None


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
