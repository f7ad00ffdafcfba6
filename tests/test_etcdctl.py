"""etcd's own v2 client, etcdctl, works against a 3-member store unchanged."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from harness.local import LocalCluster

ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not os.path.exists(ETCDCTL):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{ETCDCTL} is missing; CI must have it (apt-get install etcd-client)")
        pytest.skip(f"{ETCDCTL} is missing (Debian's etcd-client)")
    with LocalCluster(3, "store", tmp_path_factory.mktemp("etcdctl")) as cluster:
        leader = cluster.wait_ready(30)
        # A follower first: etcdctl talks to the first endpoint that answers.
        order = sorted(cluster.members, key=lambda n: n == leader)
        yield ",".join(cluster.client_url(n) for n in order)


def ctl(endpoints: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ETCDCTL, "--endpoints", endpoints, *args],
        env={**os.environ, "ETCDCTL_API": "2"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def ok(endpoints: str, *args: str) -> str:
    r = ctl(endpoints, *args)
    assert r.returncode == 0, f"etcdctl {' '.join(args)}: {r.returncode} {r.stderr}"
    return r.stdout


def test_keys_directories_and_compare_and_swap(endpoints: str) -> None:
    assert ok(endpoints, "set", "/t/foo", "bar") == "bar\n"
    # Reads name --quorum: etcdctl picks any member, and a follower's default read may not
    # have applied the write yet (etcd's own default reads are stale that way too).
    assert ok(endpoints, "get", "--quorum", "/t/foo") == "bar\n"
    mk = ctl(endpoints, "mk", "/t/foo", "x")
    assert mk.returncode != 0 and "105: Key already exists (/t/foo)" in mk.stderr
    ok(endpoints, "mkdir", "/t/d")
    ok(endpoints, "set", "/t/d/a", "1")
    listed = ok(endpoints, "ls", "--recursive", "--quorum", "/t").split()
    assert listed == ["/t/foo", "/t/d", "/t/d/a"]
    assert ok(endpoints, "update", "/t/foo", "baz") == "baz\n"
    assert ok(endpoints, "set", "/t/foo", "qux", "--swap-with-value", "baz") == "qux\n"
    swap = ctl(endpoints, "set", "/t/foo", "no", "--swap-with-value", "baz")
    assert swap.returncode != 0 and "101: Compare failed" in swap.stderr
    ok(endpoints, "rm", "/t/foo")
    gone = ctl(endpoints, "get", "--quorum", "/t/foo")
    assert gone.returncode != 0 and "100: Key not found (/t/foo)" in gone.stderr
    rmdir = ctl(endpoints, "rmdir", "/t/d")
    assert rmdir.returncode != 0 and "108: Directory not empty" in rmdir.stderr
    ok(endpoints, "rm", "--recursive", "/t/d")


def test_quorum_reads_members_and_health(endpoints: str) -> None:
    ok(endpoints, "set", "/q", "v")
    assert ok(endpoints, "get", "--quorum", "/q") == "v\n"
    members = ok(endpoints, "member", "list").splitlines()
    assert len(members) == 3 and sum("isLeader=true" in m for m in members) == 1
    assert all("clientURLs=http://127.0.0.1:" in m for m in members)
    assert ok(endpoints, "cluster-health").rstrip().endswith("cluster is healthy")
