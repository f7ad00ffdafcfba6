"""`python -m store` takes etcd's flags, and says which one is wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from store.config import ConfigError, build_parser, config_from_args

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


def test_every_member_derives_the_same_ids():
    a = parse("--name", "n1", "--initial-cluster", CLUSTER, "--initial-cluster-token", "t")
    b = parse("--name", "n3", "--initial-cluster", CLUSTER, "--initial-cluster-token", "t")
    c = parse("--name", "n3", "--initial-cluster", CLUSTER, "--initial-cluster-token", "u")
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
