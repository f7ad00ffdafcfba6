"""The `splitbrain` command: run a test, check a history, build the image, explore a cluster."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any

from checker.cli import EXIT_BAD_INPUT, add_check_command

EXIT_INTERRUPTED, EXIT_ERROR = 2, 3


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 3, like bad input, so that 1 and 2 keep their verdict meanings."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _add_run(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a consistency test from a YAML spec",
        description="Start a cluster, drive clients and faults, check the history. Exit 0 "
        "valid, 1 invalid, 2 unknown (or interrupted), 3 setup or harness error.",
    )
    p.add_argument("spec", help="the test spec (YAML; see docs/specs.md)")
    p.add_argument("--system", help="store, etcd or module:Class")
    p.add_argument("--backend", choices=["docker", "local", "ssh"])
    p.add_argument("--hosts", metavar="H1,H2,...",
                   help="the ssh backend's hosts, one node each (docs/real-machines.md)")
    p.add_argument("--nodes", type=int)
    p.add_argument("--concurrency", type=int)
    p.add_argument("--time-limit", type=float, metavar="SECONDS")
    p.add_argument("--nemesis", metavar="FAULTS", help="comma-separated faults, or none")
    p.add_argument("--seed", type=int)
    p.add_argument("--results", metavar="DIR", help="where runs are written (default results)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict")
    p.add_argument("--junit", metavar="FILE",
                   help="write JUnit XML (a test case per checker and per failing key) and "
                   "print a CI summary")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from checker.verdict import Verdict
    from harness.checkers import named
    from harness.preflight import preflight
    from harness.progress import Progress
    from harness.results import ResultsError
    from harness.runner import run
    from harness.spec import SpecError, load, override

    try:
        spec = load(args.spec)
        faults = (
            None
            if args.nemesis is None
            else [f for f in args.nemesis.split(",") if f and f != "none"]
        )
        spec = override(
            spec, system=args.system, backend=args.backend, nodes=args.nodes,
            concurrency=args.concurrency, time_limit=args.time_limit, faults=faults,
            seed=args.seed, results=args.results,
            hosts=args.hosts,
        )  # fmt: skip
        preflight(spec, args.spec)
    except SpecError as e:
        print(f"splitbrain run: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # Until the run's own handlers take over, SIGTERM unwinds like Ctrl-C (so that
    # whatever was made gets removed) instead of killing the process outright.
    interrupt_on_sigterm()
    try:
        outcome = run(spec, Progress(quiet=args.quiet))
    except ResultsError as e:
        print(f"splitbrain run: {e}", file=sys.stderr)
        return EXIT_ERROR
    r = outcome.results
    lines = []
    if r.error:
        lines.append(f"error: {r.error}")
    for name, checked in r.checkers.items():
        checker = named(name)
        lines.append(f"  {name}: {Verdict.of(checked['valid']).word}{checker.detail(checked)}")
    if r.stats:
        s = r.stats
        ok = sum(c.get("ok", 0) for c in s["ops"].values())
        lines.append(
            f"  {ok} ok operations, {s['ok_per_s']} ok/s, availability "
            f"{s['availability']}, {len(s['faults'])} faults"
        )
    for note in r.notes:
        lines.append(f"  note: {note}")
    if args.junit:  # the CI summary says the same, verdict first
        _finish(r.to_json(), outcome.directory, args.junit)
        for note in r.notes:
            print(f"  note: {note}")
        print(f"results: {outcome.directory}")
        return outcome.exit_code
    verdict = r.verdict.word + (" (interrupted)" if r.interrupted else "")
    if r.error and r.verdict is not Verdict.INVALID:  # exit 3: the error is the answer
        verdict = f"error (what was recorded: {verdict})" if r.checkers else "error"
    print(f"{r.test}: {verdict}")
    for line in lines:
        print(line)
    print(f"results: {outcome.directory}")
    if (outcome.directory / "report.html").exists():
        print(f"report: {outcome.directory / 'report.html'}")
    return outcome.exit_code


def _add_hunt(sub: Any) -> None:
    p = sub.add_parser(
        "hunt",
        help="run a spec with seeds 1..N until a run is invalid (a nightly job's command)",
        description="Run SPEC with seeds 1, 2, ... (each a `splitbrain run` in its own "
        "results folder), one line per run; stop at the first invalid run unless "
        "--keep-going. Writes RESULTS/hunt.json and RESULTS/junit.xml. Exit 1 if any run "
        "was invalid, else 2 if any was unknown (or interrupted), else 3 if any could not "
        "run, else 0.",
    )
    p.add_argument("spec", help="the test spec (YAML; see docs/specs.md)")
    p.add_argument("--runs", type=int, metavar="N", help="seeds 1..N (default 10, or "
                   "unlimited with --budget)")
    p.add_argument("--budget", metavar="TIME", help="start no run after this long: 90s, 30m, 2h")
    p.add_argument("--first-seed", type=int, default=1, metavar="SEED")
    p.add_argument("--keep-going", action="store_true", help="do not stop at an invalid run")
    p.add_argument("--parallel", type=int, default=1, metavar="K",
                   help="K runs (K clusters) at once (default 1)")
    p.add_argument("--results", metavar="DIR", help="default results/hunt-<spec>-<time>")
    p.add_argument("--time-limit", type=float, metavar="SECONDS")
    p.add_argument("--nemesis", metavar="FAULTS", help="comma-separated faults, or none")
    p.add_argument("--backend", choices=["docker", "local", "ssh"])
    p.add_argument("--hosts", metavar="H1,H2,...",
                   help="the ssh backend's hosts, one node each (docs/real-machines.md)")
    p.set_defaults(run=_hunt)


def _hunt(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.hunt import HuntPlan, hunt, parse_budget
    from harness.spec import SpecError, load, override

    try:  # a bad spec is said once, not once per run
        spec = override(load(args.spec), backend=args.backend, hosts=args.hosts)
    except SpecError as e:
        print(f"splitbrain hunt: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if spec.backend == "ssh" and args.parallel > 1:
        print("splitbrain hunt: --parallel: the ssh backend's hosts hold one run at a time",
              file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    budget = None
    if args.budget is not None:
        try:
            budget = parse_budget(args.budget)
        except ValueError as e:
            print(f"splitbrain hunt: --budget: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    for name in ("runs", "parallel"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"splitbrain hunt: --{name}: expected a whole number >= 1, got {value}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
    runs = args.runs if args.runs is not None else (None if budget is not None else 10)
    passed: list[str] = []
    for flag, value in (("--time-limit", args.time_limit), ("--nemesis", args.nemesis),
                        ("--backend", args.backend), ("--hosts", args.hosts)):
        if value is not None:
            passed += [flag, str(value)]
    stamp = time.strftime("%Y%m%dT%H%M%S")
    results = Path(args.results or f"results/hunt-{Path(args.spec).stem}-{stamp}")
    plan = HuntPlan(args.spec, results, runs, budget, args.parallel, args.keep_going,
                    tuple(passed), args.first_seed)
    interrupt_on_sigterm()
    print(f"hunting with {args.spec}: " + (f"{runs} runs" if runs else "until the budget")
          + (f", {args.budget} budget" if budget else "") + f", {args.parallel} at a time; "
          f"results: {results}", flush=True)
    result = hunt(plan, lambda line: print(line, flush=True))
    print(result.table())
    print(f"hunt: {results / 'hunt.json'}, junit: {results / 'junit.xml'}")
    return result.exit_code


def interrupt_on_sigterm() -> None:
    """SIGTERM unwinds as Ctrl-C does (KeyboardInterrupt): a run in progress heals,
    removes its cluster and keeps what it recorded."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _add_report(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild a run's results.json and report.html from its stored history",
        description="Check the run's history.jsonl again with this version's checkers, "
        "rewrite results.json and build report.html. Exit as `run` does: 0 valid, 1 "
        "invalid, 2 unknown, 3 not a run folder.",
    )
    p.add_argument("run_dir", metavar="RESULTS_DIR",
                   help="a run's folder (results/<test>/<time>, or results/latest)")
    p.add_argument("--no-check", action="store_true",
                   help="only rebuild report.html from the results.json there")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    p.set_defaults(run=_report)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from checker.verdict import Verdict
    from harness.check import recheck
    from harness.report.build import build_report
    from harness.results import exit_code, unfinished_results
    from harness.spec import SpecError

    run_dir = Path(args.run_dir)
    has_results = (run_dir / "results.json").is_file()
    has_history = (run_dir / "history.jsonl").is_file()
    if not has_history or (args.no_check and not has_results):
        wanted = [n for n, there in (("results.json", has_results), ("history.jsonl", has_history))
                  if not there]  # fmt: skip
        print(f"splitbrain report: {run_dir}: no {' and '.join(wanted)} here "
              "(not a run's folder?)", file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
    try:
        if not has_results:  # a run killed outright: its history is checked all the same
            unfinished_results(run_dir).write(run_dir / "results.json")
            print(f"{run_dir}: an unfinished run (no results.json): checking its history",
                  file=sys.stderr)
        results = (json.loads((run_dir / "results.json").read_text()) if args.no_check
                   else recheck(run_dir))
    except (SpecError, ValueError, OSError) as e:
        print(f"splitbrain report: {run_dir}: {e}", file=sys.stderr)
        return EXIT_ERROR
    path = build_report(run_dir)
    _finish(results, run_dir, args.junit)
    print(f"report: {path}")
    verdict = Verdict.of(results.get("valid"))
    if results.get("error") and verdict is not Verdict.INVALID:  # as `run` exited: the error is
        return EXIT_ERROR                                        # the answer
    return exit_code(verdict, bool(results.get("interrupted")))


def _finish(results: dict[str, Any], run_dir: Any, junit: str | None) -> None:
    """The CI summary, and JUnit XML when asked for."""
    from harness.junit import summary, write_run

    if junit:
        write_run(results, junit, run_dir)
        print(summary(results, run_dir))


def _add_serve(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="browse the runs under a results folder over HTTP",
        description="An index of every run (newest first, filterable by verdict) linking "
        "to each report, and each run's files. Binds 127.0.0.1 unless --host says otherwise.",
    )
    p.add_argument("root", nargs="?", default="results", metavar="RESULTS_ROOT",
                   help="the folder runs are written to (default results)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.serve import serve

    root = Path(args.root)
    if not root.is_dir():
        print(f"splitbrain serve: {root}: no such folder", file=sys.stderr)
        return EXIT_ERROR
    try:
        serve(root, args.host, args.port)
    except OSError as e:
        print(f"splitbrain serve: {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _add_image(sub: Any) -> None:
    p = sub.add_parser("image", help="the node image")
    actions = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    build = actions.add_parser(
        "build", help="build our store's node image and the helper image (cached by hash)"
    )
    build.add_argument("--force", action="store_true", help="rebuild even when cached")
    build.set_defaults(run=_image_build)


def _image_build(args: argparse.Namespace) -> int:
    from harness.docker import connect
    from harness.image import ImageError, ensure_helper, ensure_image

    interrupt_on_sigterm()
    say = lambda line: print(line, flush=True)  # noqa: E731
    try:
        client = connect()
        image = ensure_image(say, force=args.force, client=client)
        helper = ensure_helper(client, say, force=args.force)
    except (ImageError, RuntimeError) as e:
        print(f"splitbrain image build: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("splitbrain image build: interrupted; the build's processes and temporary "
              "files are gone, the images already there kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{image.tag} {image.id}")
    print(f"{helper.tag} {helper.id}")
    return 0


def _add_cluster(sub: Any) -> None:
    p = sub.add_parser("cluster", help="a cluster to explore by hand (Docker)")
    actions = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    up = actions.add_parser("up", help="start a cluster that stays until `cluster down`")
    up.add_argument("--system", default="store", help="store, etcd or module:Class")
    up.add_argument("--nodes", type=int, default=3)
    up.set_defaults(run=_cluster_up)
    down = actions.add_parser("down", help="remove clusters started by `cluster up`")
    down.add_argument("run_id", nargs="?", help="one cluster (default: all of them)")
    down.set_defaults(run=_cluster_down)
    status = actions.add_parser("status", help="the clusters and their nodes")
    status.set_defaults(run=_cluster_status)


def _cluster_up(args: argparse.Namespace) -> int:
    import secrets

    from harness.docker import DockerCluster, connect, remove_leftovers
    from harness.image import ImageError, ensure_helper, ensure_node_image
    from harness.labels import MANUAL
    from harness.runner import READY_S, wait_ready
    from harness.system import BadSystem, ContainerSystem, make_system

    try:
        system = make_system(args.system)
        if not isinstance(system, ContainerSystem):
            raise BadSystem(f"{args.system} names no image (harness.system.ContainerSystem)")
        client = connect()
        remove_leftovers(client, print)
        say = lambda line: print(line, flush=True)  # noqa: E731
        image = ensure_node_image(system.image, client, say)
        helper = ensure_helper(client, say)
    except (BadSystem, ImageError, RuntimeError) as e:
        print(f"splitbrain cluster up: {e}", file=sys.stderr)
        return EXIT_ERROR
    run_id = f"manual-{time.strftime('%H%M%S')}{secrets.token_hex(2)}"
    cluster = DockerCluster(system, args.nodes, run_id, image.tag, MANUAL, client=client,
                            helper_image=helper.tag)  # fmt: skip
    try:
        cluster.up()
        leader = asyncio.run(wait_ready(system, cluster, READY_S))
    except BaseException as e:
        cluster.down()
        print(f"splitbrain cluster up: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(f"cluster {run_id}: {args.system}, leader {leader}")
    for node in cluster.nodes:
        print(f"  {node.name} {node.client_url}")
    print(f"remove it with: splitbrain cluster down {run_id}")
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    """Clusters of `cluster up`, and leftovers of runs whose process is gone (the ones
    `cluster status` shows as "gone (leftover)"); never those of a run still going."""
    from harness.docker import DockerError, connect, remove_run
    from harness.labels import LABEL, MANUAL, OWNER, RUN, owner_alive

    try:
        client = connect()
    except DockerError as e:
        print(f"splitbrain cluster down: {e}", file=sys.stderr)
        return EXIT_ERROR
    owners: dict[str, set[str | None]] = {}
    flt = {"label": LABEL}
    found = [c.labels for c in client.containers.list(all=True, filters=flt)]
    found += [n.attrs.get("Labels") or {} for n in client.networks.list(filters=flt)]
    found += [v.attrs.get("Labels") or {} for v in client.volumes.list(filters=flt)]
    for labels in found:
        if labels.get(RUN):
            owners.setdefault(labels[RUN], set()).add(labels.get(OWNER))

    def running(run_id: str) -> str | None:
        """The owner of a run still going (not `cluster up`'s, whose owner is manual)."""
        return next((o for o in owners[run_id] if o != MANUAL and owner_alive(o)), None)

    if args.run_id:
        if args.run_id not in owners:
            print(f"splitbrain cluster down: no cluster {args.run_id}", file=sys.stderr)
            return EXIT_ERROR
        owner = running(args.run_id)
        if owner is not None:
            print(
                f"splitbrain cluster down: {args.run_id} belongs to a run still going "
                f"(process {owner.split(':')[0]}); interrupt that run instead",
                file=sys.stderr,
            )
            return EXIT_ERROR
        chosen = [args.run_id]
    else:
        chosen = sorted(r for r in owners if running(r) is None)
    for run_id in chosen:
        remove_run(client, run_id)
        print(f"removed {run_id}")
    return 0


def _cluster_status(args: argparse.Namespace) -> int:
    from harness.docker import ROLE, DockerError, connect
    from harness.labels import LABEL, OWNER, RUN, owner_alive

    try:
        client = connect()
    except DockerError as e:
        print(f"splitbrain cluster status: {e}", file=sys.stderr)
        return EXIT_ERROR
    found: dict[str, list[dict[str, str]]] = {}
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        owner = c.labels.get(OWNER)
        networks = c.attrs["NetworkSettings"]["Networks"]
        # a node has no network of its own: its helper holds its address (harness/docker.py)
        address = next(iter(networks.values()))["IPAddress"] if networks else ""
        found.setdefault(c.labels.get(RUN, "?"), []).append({
            "node": c.name, "role": c.labels.get(ROLE, "node"), "status": c.status,
            "address": address,
            "owner": "manual" if owner == "manual" else
            ("running" if owner_alive(owner) else "gone (leftover)"),
        })  # fmt: skip
    if not found:
        print("no splitbrain clusters")
    for run_id, nodes in sorted(found.items()):
        print(json.dumps({"run": run_id, "nodes": nodes}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="splitbrain", description="Jepsen-style consistency testing.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)
    _add_hunt(sub)
    add_check_command(sub)
    _add_report(sub)
    _add_serve(sub)
    _add_image(sub)
    _add_cluster(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit 1 only ever means a checker found a history invalid (docs/harness.md): an
    unexpected failure of the harness is 3, an interruption 2, each said in one line."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print(f"splitbrain {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        print(f"splitbrain {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
