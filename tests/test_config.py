"""`python -m store` takes etcd's flags, and says which one is wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from store.config import ConfigError, build_parser, config_from_args, read_config_file

CLUSTER = "n1=http://127.0.0.1:21380,n2=http://127.0.0.1:21480,n3=http://127.0.0.1:21580"


def parse(*args: str):
    return config_from_args(build_parser().parse_args(list(args)))


def test_etcd_flags_are_understood():
    cfg = parse(
        "--name", "n2", "--data-dir", "/tmp/x", "--listen-client-urls", "http://127.0.0.1:21479",
        "--advertise-client-urls", "http://127.0.0.1:21479",
        "--listen-peer-urls", "http://127.0.0.1:21480",
        "--initial-advertise-peer-urls", "http://127.0.0.1:21480",
        "--initial-cluster", CLUSTER, "--initial-cluster-token", "tok",
        "--initial-cluster-state", "new", "--heartbeat-interval", "50",
        "--election-timeout", "500", "--snapshot-count", "100", "--enable-v2=true",
    )  # fmt: skip
    assert cfg.me.name == "n2" and cfg.me.raft_id == 2
    assert [m.name for m in cfg.members] == ["n1", "n2", "n3"]
    assert cfg.listen_client == (("127.0.0.1", 21479),)
    assert cfg.listen_peer == ("127.0.0.1", 21480)
    assert (cfg.heartbeat_ms, cfg.election_ms, cfg.snapshot_count) == (50, 500, 100)
    assert cfg.request_timeout_s == pytest.approx(6.0)


def member(name: str, *args: str):
    peer = dict(item.split("=") for item in CLUSTER.split(","))[name]
    return parse(
        "--name", name, "--initial-advertise-peer-urls", peer, "--initial-cluster", CLUSTER, *args
    )  # fmt: skip


def test_every_member_derives_the_same_ids():
    a = member("n1", "--initial-cluster-token", "t")
    b = member("n3", "--initial-cluster-token", "t")
    c = member("n3", "--initial-cluster-token", "u")
    assert a.members == b.members and a.cluster_id == b.cluster_id
    assert c.cluster_id != a.cluster_id  # the token separates clusters, as in etcd


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--name", "n9", "--initial-cluster", CLUSTER], "--initial-cluster"),
        (["--initial-cluster", "n1"], "--initial-cluster"),
        (["--listen-client-urls", "nonsense"], "--listen-client-urls"),
        (["--heartbeat-interval", "0"], "--heartbeat-interval"),
        (["--election-timeout", "100"], "--election-timeout"),
        (["--snapshot-count", "0"], "--snapshot-count"),
        # etcd refuses these too: a member whose --initial-cluster URLs are not the
        # ones it advertises (a name listed twice), one URL for two members, no v2.
        (
            ["--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:21380",
             "--initial-cluster", CLUSTER + ",n1=http://127.0.0.1:21680"],
            "--initial-cluster",
        ),
        (["--initial-cluster", "default=http://localhost:2380,b=http://localhost:2380"],
         "--initial-cluster"),
        (["--enable-v2=false"], "--enable-v2"),
        (["--force-new-cluster"], "--force-new-cluster"),
    ],
)
def test_bad_values_name_their_flag(args, flag):
    with pytest.raises(ConfigError, match=flag):
        parse(*args)


def test_the_command_line_exits_2_with_the_reason():
    r = subprocess.run(
        [sys.executable, "-m", "store", "--heartbeat-interval", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "--heartbeat-interval" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "store", "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--no-such-flag" in r.stderr


def test_common_etcd_flags_are_accepted():
    cfg = member(
        "n1", "--logger", "zap", "--log-outputs", "stderr", "--listen-metrics-urls",
        "http://127.0.0.1:21381", "--auto-compaction-retention", "1",
        "--quota-backend-bytes", "8589934592", "--max-snapshots", "5", "--max-wals", "5",
        "--pre-vote=false", "--wal-dir", "/tmp/w", "--force-new-cluster=false", "--debug",
        "--initial-election-tick-advance=false",
    )  # fmt: skip
    assert cfg.pre_vote is False and cfg.wal_dir is not None and cfg.max_snapshots == 5
    assert cfg.initial_election_tick_advance is False
    assert cfg.auto_compaction.mode == "periodic" and cfg.auto_compaction.retention == 3600.0
    ignored = {f.split("=")[0] for f in cfg.ignored_flags}
    assert ignored == {
        "--logger", "--listen-metrics-urls", "--quota-backend-bytes", "--max-wals",
    }  # fmt: skip


def test_a_config_file_holds_the_flags(tmp_path):
    path = tmp_path / "etcd.conf.yml"
    path.write_text(
        "# etcd's sample config\n"
        "name: 'n2'\n"
        "data-dir: /tmp/n2\n"
        "snapshot-count: 42 # comment\n"
        "initial-advertise-peer-urls: http://127.0.0.1:21480\n"
        f"initial-cluster: {CLUSTER}\n"
        "initial-cluster-state: 'new'\n"
        "enable-v2: true\n"
        "wal-dir:\n"
    )
    args = read_config_file(str(path))
    cfg = config_from_args(build_parser().parse_args(args))
    assert (cfg.name, cfg.snapshot_count, cfg.wal_dir) == ("n2", 42, None)
    path.write_text("client-transport-security:\n  cert-file: x\n")
    with pytest.raises(ConfigError, match="--config-file"):
        read_config_file(str(path))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "store", *args], capture_output=True, text=True, timeout=60
    )


def test_version_prints_and_exits():
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.startswith("etcd Version: 3.4")


def test_existing_cluster_state_on_an_empty_data_dir_is_refused(tmp_path):
    r = _run(
        "--data-dir", str(tmp_path / "d"), "--initial-cluster-state", "existing",
        "--listen-client-urls", "http://127.0.0.1:21379",
        "--advertise-client-urls", "http://127.0.0.1:21379",
        "--listen-peer-urls", "http://127.0.0.1:21380",
        "--initial-advertise-peer-urls", "http://127.0.0.1:21380",
    )  # fmt: skip
    assert r.returncode == 1 and "--initial-cluster-state existing" in r.stderr
