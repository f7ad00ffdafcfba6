"""The ssh backend end to end: hosts that are containers running sshd (tests/ssh_hosts.py),
reached by the harness over SSH only, with host-key checking on.

One set of five hosts for the module. Each test checks what the run left on the hosts
afterwards, from outside (through Docker, the fixture's): no member process, no
splitbrain iptables chain, no run directory. Without Docker they skip, saying why,
except under CI (CI=true), where they must run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.progress import Progress
from harness.results import EXIT_ERROR, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID
from harness.runner import run
from harness.spec import SpecError, load, override, parse
from harness.system import Etcd, HostShell
from tests.ssh_hosts import LINKED_ROOT, SshHosts, make_hosts
from tests.test_harness import docker_client, history, wait_for
from tests.test_run_lifecycle import results_of  # checked against docs/results.schema.json

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("SPLITBRAIN_SEED", "20261206"))


def test_an_ssh_spec_names_its_hosts_and_the_nodes_follow() -> None:
    spec = parse({"backend": "ssh", "ssh": {"hosts": ["h1", "h2", "h3"], "user": "deploy"}})
    assert spec.nodes == 3 and spec.ssh.hosts == ("h1", "h2", "h3") and spec.ssh.user == "deploy"
    assert spec.ssh.strict_host_keys is True
    cli = override(load(ROOT / "specs" / "demo.yaml"), backend="ssh", hosts=["a", "b", "c"])
    assert cli.nodes == 3 and cli.ssh.hosts == ("a", "b", "c")
    assert override(cli, hosts="h1, h2,,h3,h4").ssh.hosts == ("h1", "h2", "h3", "h4")
    assert override(cli, seed=1).ssh == cli.ssh  # written and read back the same
    for data, message in [
        ({"backend": "ssh"}, "ssh'.hosts: the ssh backend needs hosts"),
        ({"backend": "ssh", "nodes": 5, "ssh": {"hosts": ["a", "b"]}},
         "5 nodes on 2 ssh hosts"),
        ({"backend": "ssh", "ssh": {"hosts": ["a", "a"]}}, "a host is named twice"),
        ({"backend": "ssh", "ssh": {"hosts": ["a"], "strict_host_keys": "no"}},
         "strict_host_keys: expected true or false"),
        ({"backend": "ssh", "ssh": {"hosts": ["a"], "password": "x"}},
         "unknown field 'password'"),
    ]:
        with pytest.raises(SpecError, match=message):
            parse(data)


@pytest.fixture(scope="module")
def hosts() -> Iterator[SshHosts]:
    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="splitbrain-ssh-") as tmp:
        made = make_hosts(client, 5, Path(tmp))
        try:
            yield made
        finally:
            made.remove()


def assert_hosts_clean(hosts: SshHosts, count: int, run_id: str) -> None:
    """No member, no chain of ours and no run directory left on the first `count` hosts."""
    for i in range(count):
        code, out = hosts.exec(
            i, f"iptables -S | grep -c splitbrain-; ls /var/lib/splitbrain/runs; "
            f"ps -eo args | grep -E '(-m store|^etcd|delayer)' | grep -v grep; "
            f"test -e /var/lib/splitbrain/runs/{run_id}")  # fmt: skip
        assert out.split()[0] == "0", f"host {i + 1}: chains left: {out}"
        assert "-m store" not in out and "--name" not in out, f"host {i + 1}: a member: {out}"
        assert code != 0, f"host {i + 1}: /var/lib/splitbrain/runs/{run_id} left: {out}"


def ssh_spec(name: str, hosts: SshHosts, tmp_path: Path, count: int, **changes: Any) -> Any:
    spec = load(ROOT / "specs" / f"{name}.yaml")
    return override(spec, backend="ssh", ssh=hosts.ssh(count, **changes.pop("ssh", {})),
                    nodes=count, seed=SEED, results=str(tmp_path), **changes)  # fmt: skip


def faults_done(run_dir: Path) -> set[str]:
    return {op["f"] for op in history(run_dir)
            if op["process"] == "nemesis" and op["type"] == "info" and op.get("error") is None}


def test_our_store_on_three_hosts_with_sudo_survives_partitions_kills_and_pauses(
    hosts: SshHosts, tmp_path: Path
) -> None:
    spec = parse({
        "name": "store-sudo", "system": "store", "backend": "ssh", "concurrency": 6,
        "time_limit": 12, "seed": SEED, "results": str(tmp_path), "collect_data": "always",
        "ssh": hosts.ssh(3, user="deploy"),
        "workload": {"name": "register", "reads": "quorum"},
        "nemesis": {"faults": ["partition", "kill", "pause"],
                    "schedule": {"fault": 2, "heal": 1.5},
                    "partition": {"kinds": ["isolate-leader"]},
                    "kill": {"targets": ["leader"]}, "pause": {"targets": ["leader"]}},
    })  # fmt: skip
    outcome = run(spec, Progress(quiet=True))
    results = results_of(outcome.directory)
    summary = f"seed {SEED}: {json.dumps(results)[:3000]}"
    assert outcome.exit_code == EXIT_VALID, summary
    assert {"partition", "kill", "pause"} <= faults_done(outcome.directory), summary
    assert results["cluster"]["backend"] == "ssh" and results["cluster"]["user"] == "deploy"
    nodes = outcome.directory / "nodes"
    assert {p.name for p in nodes.iterdir()} == {
        "n1.log", "n2.log", "n3.log", "n1", "n2", "n3"}
    assert b"StateLeader" in b"".join(p.read_bytes() for p in nodes.glob("*.log"))
    for name in ("n1", "n2", "n3"):  # the data directories, read as root by a sudo user
        assert (nodes / name / "data" / "member").is_dir(), list((nodes / name).rglob("*"))
    assert not any("data directory" in note for note in results["notes"]), summary
    assert_hosts_clean(hosts, 3, outcome.results.run_id)


def test_the_demo_on_five_hosts_as_root_is_valid_with_a_report(
    hosts: SshHosts, tmp_path: Path
) -> None:
    """The issue's "done when": the demo spec, --backend ssh with five hosts."""
    spec = ssh_spec("demo", hosts, tmp_path, 5, time_limit=12)
    outcome = run(spec, Progress(quiet=True))
    results = results_of(outcome.directory)
    assert outcome.exit_code == EXIT_VALID, f"seed {SEED}: {json.dumps(results)[:3000]}"
    assert len(results["cluster"]["nodes"]) == 5
    assert results["stats"]["faults"], results["stats"]
    assert (outcome.directory / "report.html").is_file()
    assert_hosts_clean(hosts, 5, outcome.results.run_id)


def test_etcd_default_reads_on_hosts_are_found_stale(hosts: SshHosts, tmp_path: Path) -> None:
    spec = ssh_spec("etcd-stale-reads", hosts, tmp_path, 3, time_limit=15, concurrency=6)
    outcome = run(spec, Progress(quiet=True))
    results = results_of(outcome.directory)
    assert outcome.exit_code == EXIT_INVALID, f"seed {SEED}: {json.dumps(results)[:3000]}"
    assert results["system"]["version"].startswith("3.4")
    assert results["cluster"]["install"] is None  # etcd from the host's package: no venv
    assert_hosts_clean(hosts, 3, outcome.results.run_id)


def test_etcd_quorum_reads_on_hosts_are_linearizable(hosts: SshHosts, tmp_path: Path) -> None:
    """With the hosts' directory of ours reached through a symbolic link."""
    spec = ssh_spec("etcd-quorum-reads", hosts, tmp_path, 3, time_limit=15, concurrency=6,
                    ssh={"root": LINKED_ROOT})
    outcome = run(spec, Progress(quiet=True))
    results = results_of(outcome.directory)
    assert outcome.exit_code == EXIT_VALID, f"seed {SEED}: {json.dumps(results)[:3000]}"
    assert any(f["f"] == "partition" for f in results["stats"]["faults"])
    assert results["cluster"]["run_dir"].startswith(LINKED_ROOT)
    assert_hosts_clean(hosts, 3, outcome.results.run_id)


def test_ctrl_c_stops_members_and_removes_chains_on_every_host(
    hosts: SshHosts, tmp_path: Path
) -> None:
    """Interrupted while a partition is in force, with strict_host_keys off (said loudly)."""
    spec_file = tmp_path / "interrupt.yaml"
    spec_file.write_text(json.dumps({
        "name": "interrupt", "system": "store", "backend": "ssh", "concurrency": 3,
        "time_limit": 120, "seed": SEED, "results": str(tmp_path / "results"),
        "ssh": {"hosts": hosts.addresses[:3], "identity": str(hosts.identity),
                "known_hosts": str(tmp_path / "empty"), "strict_host_keys": False},
        "nemesis": {"faults": ["partition"], "schedule": {"fault": 60, "heal": 1}},
    }))  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(spec_file)], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for(lambda: any("-A splitbrain-partition" in hosts.exec(i, "iptables -S")[1]
                             for i in range(3)), 90, "a partition in force on a host")
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=90)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == EXIT_UNKNOWN, out
    assert "WARNING: ssh.strict_host_keys is false" in out, out
    assert "(interrupted)" in out, out
    run_dir = tmp_path / "results" / "latest"
    assert_hosts_clean(hosts, 3, results_of(run_dir.resolve())["run_id"])


@pytest.mark.parametrize("case", ["refused", "wrong-key", "no-sudo", "unknown-host-key"])
def test_a_host_that_cannot_be_used_is_one_line_and_exit_3(
    hosts: SshHosts, tmp_path: Path, capsys: Any, case: str
) -> None:
    from harness.ssh import asyncssh  # imported there without its DSA warnings

    ssh = hosts.ssh(3)
    if case == "refused":
        ssh["port"] = 2222
        expected = "cannot connect over SSH"
    elif case == "wrong-key":
        other = tmp_path / "other_key"
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
        ssh["identity"] = str(other)
        expected = "user root was refused"
    elif case == "no-sudo":
        ssh["user"] = "plain"
        expected = "user plain is not root and cannot sudo"
    else:
        (tmp_path / "empty").write_text("")
        ssh["known_hosts"] = str(tmp_path / "empty")
        expected = "its host key is not verified"
    spec_file = tmp_path / "refused.yaml"
    spec_file.write_text(json.dumps({"name": "refused", "backend": "ssh", "ssh": ssh,
                                     "time_limit": 5, "results": str(tmp_path / "r")}))
    started = time.monotonic()
    code = main(["run", str(spec_file), "--quiet"])
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if expected in line]
    assert code == EXIT_ERROR, out
    assert len(lines) == 1 and lines[0].startswith("error: host "), out
    assert time.monotonic() - started < 30, "a refusal should come quickly"
    assert_hosts_clean(hosts, 3, "none")


def test_partitions_on_a_host_without_iptables_are_refused_before_the_workload(
    hosts: SshHosts, tmp_path: Path
) -> None:
    code, out = hosts.exec(0, "mv /usr/sbin/iptables /usr/sbin/iptables.hidden")
    assert code == 0, out
    try:
        spec = parse({"name": "no-iptables", "backend": "ssh", "ssh": hosts.ssh(3),
                      "time_limit": 5, "seed": SEED, "results": str(tmp_path),
                      "nemesis": {"faults": ["partition"]}})  # fmt: skip
        outcome = run(spec, Progress(quiet=True))
    finally:
        hosts.exec(0, "mv /usr/sbin/iptables.hidden /usr/sbin/iptables")
    results = results_of(outcome.directory)
    assert outcome.exit_code == EXIT_ERROR, results
    assert "cannot set up partitions on n1" in results["error"], results["error"]
    assert not (outcome.directory / "history.jsonl").exists() or not history(outcome.directory)
    assert_hosts_clean(hosts, 3, outcome.results.run_id)


WRAPPER = "/usr/local/bin/etcd-installed"


@dataclass
class InstalledEtcd(Etcd):
    """A team's system that installs itself on each host: here a script that runs etcd,
    put there by the install step (`fail`: the step fails)."""

    program: tuple[str, ...] = (WRAPPER,)
    fail: bool = False

    def install(self, host: HostShell) -> None:
        if self.fail:
            raise RuntimeError("no package for this host")
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "wrapper"
            script.write_text('#!/bin/sh\nexec etcd "$@"\n')
            host.put(script, WRAPPER)
        code, out = host.run(f"chmod 755 {WRAPPER}")
        if code != 0:
            raise RuntimeError(out)


@pytest.mark.parametrize("fail", [False, True])
def test_a_system_installs_itself_on_the_hosts(
    hosts: SshHosts, tmp_path: Path, fail: bool
) -> None:
    spec = parse({"name": "installed", "system": "tests.test_ssh:InstalledEtcd",
                  "system_options": {"fail": fail}, "backend": "ssh",
                  "ssh": hosts.ssh(3, user="deploy"), "time_limit": 3, "seed": SEED,
                  "concurrency": 3, "results": str(tmp_path)})  # fmt: skip
    try:
        outcome = run(spec, Progress(quiet=True))
        results = results_of(outcome.directory)
        if fail:  # refused before its cluster was up: no history, and its files say so
            assert outcome.exit_code == EXIT_ERROR, results
            assert results["error"].startswith("host ") and (
                "installing etcd failed: RuntimeError: no package" in results["error"])
            assert "history" not in results["files"], results["files"]
        else:
            assert outcome.exit_code == EXIT_VALID, results
            assert results["system"]["version"].startswith("3.4")
            for i in range(3):
                assert hosts.exec(i, f"test -x {WRAPPER}")[0] == 0
        assert_hosts_clean(hosts, 3, outcome.results.run_id)
    finally:
        for i in range(3):
            hosts.exec(i, f"rm -f {WRAPPER}")
