"""A 3-member cluster serving v3 writes while members are killed (SIGKILL) and restarted,
one at a time and all at once: no acknowledged v3 write is lost, and no member's
revision ever goes back, across its restarts too. As local processes, and as Docker
containers of the node image.

SPLITBRAIN_CLUSTER_KIND=etcd runs the local one against etcd 3.4. Seeded from
SPLITBRAIN_SEED.
"""

from __future__ import annotations

import http.client
import itertools
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.local import LocalCluster
from tests.test_cluster import KIND, STARTUP_S, make_cluster, snap_files
from tests.v3_client import b64, call, unb64

SEED = int(os.environ.get("SPLITBRAIN_SEED", "20261205"))
KEYS = [f"k{i}" for i in range(4)]


class _Cluster(Protocol):
    """What the scenario needs of a cluster: LocalCluster has it; _Docker adapts."""

    @property
    def members(self) -> list[str]: ...

    def client_url(self, name: str) -> str: ...

    def kill(self, name: str) -> None: ...

    def restart(self, name: str) -> None: ...

    def leader(self) -> str: ...

    def wait_ready(self, timeout: float) -> str: ...

    def wait_for(self, condition: Any, timeout: float, what: str) -> None: ...


@dataclass
class _Record:
    acked: list[tuple[str, str, int]] = field(default_factory=list)  # key, value, revision
    revisions: dict[str, list[int]] = field(default_factory=dict)  # member -> seen, in order
    odd: list[str] = field(default_factory=list)  # answers no member should give
    lock: threading.Lock = field(default_factory=threading.Lock)


def _writer(cluster: _Cluster, rec: _Record, n: int, stop: threading.Event) -> None:
    rng = random.Random(SEED + n)
    i = 0
    while not stop.is_set():
        i += 1
        key, value = rng.choice(KEYS), f"w{n}-{i}"
        name = rng.choice(cluster.members)
        txn = {"success": [{"request_put": {"key": b64(key), "value": b64(value)}}]}
        try:
            a = call(cluster.client_url(name), "/v3/kv/txn", txn, timeout=5.0)
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)
            continue
        with rec.lock:
            if a.status == 200 and a.body.get("succeeded") is True:
                rec.acked.append((key, value, a.revision))
            elif a.status != 503:  # 503: unavailable (code 14), an indeterminate write
                rec.odd.append(f"{name}: {a.status} {a.body}")


def _watcher(cluster: _Cluster, rec: _Record, stop: threading.Event) -> None:
    while not stop.is_set():
        for name in cluster.members:
            try:
                a = call(cluster.client_url(name), "/v3/kv/range",
                         {"key": b64("k0"), "serializable": True}, timeout=1.0)
            except (OSError, http.client.HTTPException):
                continue
            if a.status == 200:
                with rec.lock:
                    rec.revisions.setdefault(name, []).append(a.revision)
        time.sleep(0.02)


PHASE_WRITES = 25  # acknowledged writes each phase carries
PHASE_S = 30.0


def _writes_go_on(cluster: _Cluster, rec: _Record, what: str) -> None:
    """Wait until PHASE_WRITES more writes are acknowledged: the phase carried writes
    (and the cluster serves with what is down)."""
    with rec.lock:
        want = len(rec.acked) + PHASE_WRITES
    cluster.wait_for(lambda: len(rec.acked) >= want, PHASE_S,
                     f"{PHASE_WRITES} more acknowledged writes {what}")


def _chaos(cluster: _Cluster, rec: _Record, rng: random.Random) -> list[str]:
    log = []
    _writes_go_on(cluster, rec, "before the first kill")
    leader = cluster.leader()
    log.append(f"kill -9 leader {leader}")
    cluster.kill(leader)
    _writes_go_on(cluster, rec, f"with the old leader {leader} down")
    cluster.restart(leader)
    cluster.wait_ready(STARTUP_S)
    _writes_go_on(cluster, rec, f"after {leader} restarted")
    follower = rng.choice([m for m in cluster.members if m != cluster.leader()])
    log.append(f"kill -9 follower {follower}")
    cluster.kill(follower)
    _writes_go_on(cluster, rec, f"with the follower {follower} down")
    cluster.restart(follower)
    cluster.wait_ready(STARTUP_S)
    _writes_go_on(cluster, rec, f"after {follower} restarted")
    log.append("kill -9 every member")
    for name in cluster.members:
        cluster.kill(name)
    for name in cluster.members:
        cluster.restart(name)
    cluster.wait_ready(STARTUP_S)
    _writes_go_on(cluster, rec, "after every member restarted")
    return log


def test_no_acknowledged_v3_write_is_lost_and_revisions_never_go_back(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, snapshot_count=40)  # snapshots hold v3 state too
    try:
        _scenario(cluster)
    finally:
        cluster.stop()


def test_the_same_in_docker() -> None:
    from harness.docker import DockerCluster
    from harness.image import ensure_image
    from harness.labels import owner_here
    from harness.system import make_system
    from tests.test_harness import assert_nothing_left, docker_client

    client = docker_client()
    image = ensure_image(client=client)
    system = make_system("store", {"extra_args": ("--snapshot-count", "40")})
    run_id = f"v3kill{random.Random().randrange(10**6)}"
    made = DockerCluster(system, 3, run_id, image.tag, owner_here(), client=client)
    try:
        made.up()
        cluster = _Docker(made)
        cluster.wait_ready(60)
        _scenario(cluster)
    finally:
        made.down()
    assert_nothing_left(client, run_id)


class _Docker:
    def __init__(self, made: Any) -> None:
        self.made = made

    @property
    def members(self) -> list[str]:
        return [n.name for n in self.made.nodes]

    def client_url(self, name: str) -> str:
        node = next(n for n in self.made.nodes if n.name == name)
        return f"http://{node.host}:{node.client_port}"

    def kill(self, name: str) -> None:
        self.made.kill(name)

    def restart(self, name: str) -> None:
        self.made.kill(name)
        self.made.start(name)

    def leader(self) -> str:
        return self.wait_ready(STARTUP_S)

    def wait_ready(self, timeout: float) -> str:
        import asyncio

        from harness.runner import wait_ready

        return asyncio.run(wait_ready(self.made.system, self.made, timeout))

    def wait_for(self, condition: Any, timeout: float, what: str) -> None:
        from tests.test_harness import wait_for

        wait_for(condition, timeout, what)


def _scenario(cluster: Any) -> None:
    rng = random.Random(SEED)
    rec = _Record()
    stop = threading.Event()
    threads = [threading.Thread(target=_writer, args=(cluster, rec, n, stop)) for n in range(3)]
    threads.append(threading.Thread(target=_watcher, args=(cluster, rec, stop)))
    try:
        for t in threads:
            t.start()
        log = _chaos(cluster, rec, rng)
        stop.set()
        for t in threads:
            t.join(30)
        leader = cluster.leader()
        final = call(cluster.client_url(leader), "/v3/kv/range", {"key": b64("k")}).revision
        where = f"seed {SEED}; {'; '.join(log)}"
        assert not rec.odd, f"unexpected answers {rec.odd[:5]}: {where}"
        assert len(rec.acked) > 50, f"too few acknowledged writes ({len(rec.acked)}): {where}"
        revs = [r for _, _, r in rec.acked]
        assert len(set(revs)) == len(revs), f"two acknowledged writes share a revision: {where}"
        for name in cluster.members:
            seen = rec.revisions.get(name, [])
            assert seen, f"{name} never answered: {where}"
            back = [(a, b) for a, b in itertools.pairwise(seen) if b < a]
            assert not back, f"{name}'s revision went back {back[:3]}: {where}"
            # every member, once caught up, holds every acknowledged write at its revision
            cluster.wait_for(lambda n=name: _revision(cluster, n) >= final, 30,
                             f"{name} to reach revision {final}")
            for key, value, rev in rec.acked:
                got = call(cluster.client_url(name), "/v3/kv/range",
                           {"key": b64(key), "revision": rev, "serializable": True})
                kvs = got.body.get("kvs", [])
                assert got.status == 200 and kvs and unb64(kvs[0]["value"]) == value, (
                    f"{name} lost the acknowledged put {key}={value} at revision {rev}: "
                    f"{got.body}; {where}"
                )
    finally:
        stop.set()


def _revision(cluster: _Cluster, name: str) -> int:
    try:
        return call(cluster.client_url(name), "/v3/kv/range",
                    {"key": b64("k0"), "serializable": True}, timeout=1.0).revision
    except (OSError, http.client.HTTPException):
        return 0


def test_auto_compaction_compacts_on_the_leader(tmp_path: Path) -> None:
    """--auto-compaction-retention 1s (periodic): history older than about a second
    goes; reads of it answer etcd's code 11."""
    with LocalCluster(1, "store", tmp_path, extra_args=(
        "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1s",
    )) as cluster:  # fmt: skip
        cluster.wait_ready(STARTUP_S)
        url = cluster.client_url("n1")
        for i in range(3):
            assert call(url, "/v3/kv/put", {"key": b64("a"), "value": b64(str(i))}).status == 200

        def compacted() -> bool:
            call(url, "/v3/kv/put", {"key": b64("tick"), "value": b64("x")})
            a = call(url, "/v3/kv/range", {"key": b64("a"), "revision": 2})
            return a.status == 400 and a.body.get("code") == 11

        cluster.wait_for(compacted, 20, "an automatic compaction past revision 2")
        latest = call(url, "/v3/kv/range", {"key": b64("a")})
        assert unb64(latest.body["kvs"][0]["value"]) == "2"


def test_without_a_quorum_writes_and_linearizable_reads_answer_unavailable(
    tmp_path: Path,
) -> None:
    """etcd's code 14 (503) "request timed out" once the request timeout passes (ours:
    "leader changed" at once if n1 led and stepped down); a serializable read still
    answers from the member's own state."""
    cluster = make_cluster(tmp_path)
    try:
        url = cluster.client_url("n1")
        assert call(url, "/v3/kv/put", {"key": b64("q"), "value": b64("1")}).status == 200
        cluster.wait_for(lambda: call(url, "/v3/kv/range", {"key": b64("q"), "serializable": True})
                         .body.get("count") == "1", 10, "n1 to apply the put")
        cluster.kill("n2")
        cluster.kill("n3")
        put = call(url, "/v3/kv/put", {"key": b64("q"), "value": b64("2")}, timeout=30)
        read = call(url, "/v3/kv/range", {"key": b64("q")}, timeout=30)
        local = call(url, "/v3/kv/range", {"key": b64("q"), "serializable": True})
    finally:
        cluster.stop()
    for a in (put, read):
        assert (a.status, a.body.get("code")) == (503, 14), a
        assert a.body["error"].startswith(("etcdserver: request timed out",
                                           "etcdserver: leader changed")), a
    assert local.status == 200 and unb64(local.body["kvs"][0]["value"]) == "1"


def test_v2_and_v3_keep_separate_keyspaces(tmp_path: Path) -> None:
    """A v2 key is not a v3 key and the other way round; v3 writes leave the v2
    index alone. Both go through the one log (SPLITBRAIN_CLUSTER_KIND=etcd: etcd too)."""
    with LocalCluster(1, KIND, tmp_path) as cluster:  # type: ignore[arg-type]
        cluster.wait_ready(STARTUP_S)
        url = cluster.client_url("n1")
        with cluster.client("n1") as v2:
            assert v2.put("shared", "from-v2").status == 201
            index = int(v2.get("shared").headers["x-etcd-index"])
            assert call(url, "/v3/kv/range", {"key": b64("shared")}).body.get("kvs") is None
            assert call(url, "/v3/kv/range", {"key": b64("/shared")}).body.get("kvs") is None
            put = call(url, "/v3/kv/put", {"key": b64("shared"), "value": b64("from-v3")})
            assert put.status == 200
            got = v2.get("shared")
            assert got.json()["node"]["value"] == "from-v2"
            assert int(got.headers["x-etcd-index"]) == index
        kvs = call(url, "/v3/kv/range", {"key": b64("shared")}).body["kvs"]
        assert [unb64(kv["value"]) for kv in kvs] == ["from-v3"]


def test_a_member_catches_up_on_v3_state_and_history_from_a_snapshot(tmp_path: Path) -> None:
    """The v3 state, its history since the last compaction and the compaction itself
    travel in snapshots: a member that missed entries its peers compacted away gets
    them from InstallSnapshot (our store) or the log (etcd) and answers as they do."""
    count = 20
    cluster = make_cluster(tmp_path, snapshot_count=count)
    try:
        leader = cluster.leader()
        behind, other = (n for n in cluster.members if n != leader)
        url = cluster.client_url(leader)
        cluster.kill(behind)
        for i in range(4 * count):
            call(url, "/v3/kv/put", {"key": b64(f"s{i % 7}"), "value": b64(str(i))})
        rev = call(url, "/v3/kv/range", {"key": b64("s0")}).revision
        assert call(url, "/v3/kv/compaction", {"revision": rev - 30}).status == 200
        cluster.wait_for(lambda: _revision(cluster, other) >= rev, 10, f"{other} to apply")
        cluster.kill(leader)
        cluster.kill(other)
        cluster.restart(other)
        cluster.restart(behind)
        cluster.wait_ready(STARTUP_S)
        cluster.wait_for(lambda: _revision(cluster, behind) >= rev, 30, f"{behind} to catch up")
        asks = [{"key": b64("\0"), "range_end": b64("\0")},
                {"key": b64("\0"), "range_end": b64("\0"), "revision": rev - 10},
                {"key": b64("\0"), "range_end": b64("\0"), "revision": rev - 30},
                {"key": b64("s1"), "revision": rev - 31}]
        for ask in asks:
            want, got = (call(cluster.client_url(n), "/v3/kv/range", {**ask, "serializable": True})
                         for n in (other, behind))
            assert (got.status, got.body.get("kvs"), got.body.get("code")) == (
                want.status, want.body.get("kvs"), want.body.get("code")), ask
        assert call(cluster.client_url(behind), "/v3/kv/range",
                    {"key": b64("s1"), "revision": rev - 31}).body.get("code") == 11
        if KIND == "store":
            received = [int(p.stem.split("-")[1], 16) for p in snap_files(cluster, behind)]
            assert received and min(received) > 2 * count, (
                f"{behind} caught up without InstallSnapshot: its snapshots are at {received}"
            )
    finally:
        cluster.stop()
