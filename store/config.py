"""Command-line flags of `python -m store`: etcd's names, etcd's defaults."""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from store.v3.autocompact import AutoCompaction


class ConfigError(ValueError):
    """A flag value that cannot work; the message names the flag."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    raft_id: int  # small positive id used inside Raft (1..N by name order)
    id: int  # etcd-style 64-bit member id, shown in hex by the API
    peer_urls: tuple[str, ...]

    @property
    def hex_id(self) -> str:
        return f"{self.id:x}"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    name: str
    data_dir: Path
    listen_client: tuple[tuple[str, int], ...]
    advertise_client_urls: tuple[str, ...]
    listen_peer: tuple[str, int]
    members: tuple[Member, ...]
    cluster_token: str
    cluster_state: str
    heartbeat_ms: int
    election_ms: int
    snapshot_count: int
    max_request_bytes: int
    request_timeout_s: float
    wal_dir: Path | None = None
    pre_vote: bool = True
    max_snapshots: int = 3
    # Client connections idle this long are closed (0: never).
    client_idle_timeout_s: float = 0.0
    # Client connections past this are refused (0: the descriptor limit minus a reserve).
    max_client_connections: int = 0
    initial_election_tick_advance: bool = True
    ignored_flags: tuple[str, ...] = ()  # etcd flags taken but without effect here
    max_txn_ops: int = 128
    auto_compaction: AutoCompaction = AutoCompaction("periodic", 0.0)  # noqa: RUF009 (frozen)

    @property
    def max_body(self) -> int:
        """The largest HTTP body taken: a v3 request of --max-request-bytes plus etcd's
        gRPC allowance of 512 KiB, and never under 8 MiB (v2 forms carry 2 MiB values)."""
        return max(8 << 20, self.max_request_bytes + (512 << 10))

    @property
    def me(self) -> Member:
        return next(m for m in self.members if m.name == self.name)

    @property
    def cluster_id(self) -> int:
        h = hashlib.sha1()
        for m in sorted(self.members, key=lambda m: m.id):
            h.update(m.id.to_bytes(8, "big"))
        h.update(self.cluster_token.encode())
        return int.from_bytes(h.digest()[:8], "big")


def _host_port(flag: str, url: str) -> tuple[str, int]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "tcp") or not parts.hostname or parts.port is None:
        raise ConfigError(f"{flag}: {url!r} is not an http://host:port URL")
    return parts.hostname, parts.port


def _urls(flag: str, value: str) -> tuple[str, ...]:
    urls = tuple(u.strip() for u in value.split(",") if u.strip())
    if not urls:
        raise ConfigError(f"{flag}: no URL given")
    for u in urls:
        _host_port(flag, u)
    return urls


def _member_id(peer_urls: tuple[str, ...], token: str) -> int:
    # etcd hashes the sorted peer URLs and the cluster token; so do we.
    h = hashlib.sha1("".join(sorted(peer_urls)).encode() + token.encode())
    return int.from_bytes(h.digest()[:8], "big")


def parse_initial_cluster(value: str, token: str) -> tuple[Member, ...]:
    by_name: dict[str, list[str]] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--initial-cluster: {item!r} is not NAME=URL")
        _host_port("--initial-cluster", url)
        if any(url in urls for urls in by_name.values()):
            raise ConfigError(f"--initial-cluster: {url} is listed twice")
        by_name.setdefault(name, []).append(url)
    if not by_name:
        raise ConfigError("--initial-cluster: no member given")
    return tuple(
        Member(name, i + 1, _member_id(tuple(urls), token), tuple(urls))
        for i, (name, urls) in enumerate(sorted(by_name.items()))
    )


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not a boolean")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m store",
        description="A Raft key-value store speaking etcd's v2 keys API (etcd's flag names).",
    )
    p.add_argument("--name", default="default")
    p.add_argument("--data-dir", default=None, help="default: ${name}.etcd")
    p.add_argument("--listen-client-urls", default="http://localhost:2379")
    p.add_argument("--advertise-client-urls", default="http://localhost:2379")
    p.add_argument("--listen-peer-urls", default="http://localhost:2380")
    p.add_argument("--initial-advertise-peer-urls", default="http://localhost:2380")
    p.add_argument("--initial-cluster", default=None, help="default: ${name}=<advertised peer>")
    p.add_argument("--initial-cluster-token", default="etcd-cluster")
    p.add_argument("--initial-cluster-state", default="new", choices=("new", "existing"))
    p.add_argument("--heartbeat-interval", type=int, default=100, help="ms")
    p.add_argument("--election-timeout", type=int, default=1000, help="ms")
    p.add_argument("--snapshot-count", type=int, default=100_000)
    p.add_argument(
        "--max-request-bytes",
        type=int,
        default=1536 << 10,
        help="largest v3 request (etcd's default: 1.5 MiB); HTTP bodies may be 512 KiB "
        "larger, and at least 8 MiB (v2)",
    )
    p.add_argument("--max-txn-ops", type=int, default=128,
                   help="most operations in one v3 txn branch (etcd's default 128)")
    p.add_argument("--auto-compaction-mode", default="periodic", choices=("periodic", "revision"))
    p.add_argument("--auto-compaction-retention", default="0",
                   help="periodic: hours or a duration (1h30m); revision: revisions; 0: off")
    p.add_argument("--enable-v2", type=_bool, nargs="?", const=True, default=True)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warn", "error"))
    p.add_argument("--debug", type=_bool, nargs="?", const=True, default=False,
                   help="same as --log-level debug")
    p.add_argument("--log-outputs", default="default",
                   help="stderr, stdout, or a file path (comma-separated); default stderr")
    p.add_argument("--wal-dir", default=None, help="the WAL's directory (default: in --data-dir)")
    p.add_argument("--max-snapshots", type=int, default=3,
                   help="snapshot files to keep (0: unlimited); default 3")
    p.add_argument("--pre-vote", type=_bool, nargs="?", const=True, default=True,
                   help="Raft pre-vote (default true; etcd 3.4's default is false)")
    p.add_argument("--initial-election-tick-advance", type=_bool, nargs="?", const=True,
                   default=True, help="campaign about an election timeout sooner at start")
    p.add_argument("--client-idle-timeout", type=float, default=300.0,
                   help="seconds after which an idle client connection is closed (0: never)")
    p.add_argument("--max-client-connections", type=int, default=0,
                   help="client connections past this are refused; "
                   "0 (default): the descriptor limit less a reserve for the member itself")
    p.add_argument("--force-new-cluster", type=_bool, nargs="?", const=True, default=False)
    p.add_argument("--failpoints", metavar="NAME[=on|off|ACTION(N)],...",
                   help="planted bugs to turn on (store/failpoints.py), some with a "
                   "number: answer-before-persist=flush(3600); default: the "
                   "SPLITBRAIN_FAILPOINTS environment variable")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("--config-file", default=None,
                   help="read the flags from this YAML file (flat key: value); "
                   "the command line is then ignored, as etcd does")
    # etcd flags taken for compatibility, with no effect on a v2-only store.
    for flag, metavar in _IGNORED.items():
        p.add_argument(flag, default=None, metavar=metavar, help="accepted; no effect here")
    return p


# etcd flags that a v2 store accepts and ignores (the log says so at start).
_IGNORED = {
    "--logger": "zap|capnslog",
    "--listen-metrics-urls": "URLS",
    "--quota-backend-bytes": "BYTES",
    "--max-wals": "N",
    "--grpc-keepalive-min-time": "DURATION",
    "--grpc-keepalive-interval": "DURATION",
    "--grpc-keepalive-timeout": "DURATION",
    "--enable-pprof": "BOOL",
    "--metrics": "basic|extensive",
    "--strict-reconfig-check": "BOOL",
    "--auth-token": "TOKEN",
    "--experimental-initial-corrupt-check": "BOOL",
}

VERSION = "3.4.0-splitbrain"  # the etcd version whose v2 API this store speaks


def version_text() -> str:
    return (
        f"etcd Version: {VERSION}\n"
        "Git SHA: splitbrain\n"
        f"Go Version: none (Python {sys.version.split()[0]})\n"
        f"Go OS/Arch: {sys.platform}\n"
    )


def read_config_file(path: str) -> list[str]:
    """etcd's --config-file, flat YAML (``key: value`` per line) turned into flags.

    Nested YAML (etcd's TLS sections) is refused rather than misread.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"--config-file: cannot read {path}: {e.strerror}") from e
    args = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip() or line.strip() == "---":
            continue
        if line[0].isspace() or ":" not in line:
            raise ConfigError(f"--config-file: {path}:{n}: not a flat 'key: value' line")
        key, _, value = line.partition(":")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if value in ("", "~", "null"):
            continue
        args.append(f"--{key.strip()}={value}")
    return args


def config_from_args(ns: argparse.Namespace) -> ServerConfig:
    if ns.heartbeat_interval <= 0:
        raise ConfigError("--heartbeat-interval must be positive")
    if ns.election_timeout < 5 * ns.heartbeat_interval:
        raise ConfigError(
            "--election-timeout should be at least 5 times --heartbeat-interval "
            f"(got {ns.election_timeout} and {ns.heartbeat_interval})"
        )
    if ns.snapshot_count < 1:
        raise ConfigError("--snapshot-count must be at least 1")
    if ns.max_request_bytes < 1024:
        raise ConfigError("--max-request-bytes must be at least 1024")
    advertise_peer = _urls("--initial-advertise-peer-urls", ns.initial_advertise_peer_urls)
    initial = ns.initial_cluster or ",".join(f"{ns.name}={u}" for u in advertise_peer)
    members = parse_initial_cluster(initial, ns.initial_cluster_token)
    if ns.name not in {m.name for m in members}:
        raise ConfigError(f"--initial-cluster has no member named {ns.name!r} (--name)")
    mine = next(m for m in members if m.name == ns.name).peer_urls
    if sorted(mine) != sorted(advertise_peer):
        # etcd's check too: a name listed twice (or a typo) gives this member URLs
        # that are not the ones it advertises.
        raise ConfigError(
            f"--initial-cluster gives {ns.name} the peer URLs {','.join(mine)}, "
            f"but --initial-advertise-peer-urls is {','.join(advertise_peer)}"
        )
    if not ns.enable_v2:
        raise ConfigError("--enable-v2=false: not supported; this store always serves v2 beside v3")
    if ns.force_new_cluster:
        raise ConfigError("--force-new-cluster: not supported (membership is static)")
    if ns.max_txn_ops < 1:
        raise ConfigError("--max-txn-ops must be at least 1")
    try:
        auto_compaction = AutoCompaction.parse(ns.auto_compaction_mode,
                                               ns.auto_compaction_retention)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if ns.max_snapshots < 0:
        raise ConfigError("--max-snapshots must not be negative")
    if ns.client_idle_timeout < 0:
        raise ConfigError("--client-idle-timeout must not be negative")
    if ns.max_client_connections < 0:
        raise ConfigError("--max-client-connections must not be negative")
    listen_peer = _urls("--listen-peer-urls", ns.listen_peer_urls)
    if len(listen_peer) != 1:
        raise ConfigError("--listen-peer-urls: one URL, please")
    clients = _urls("--listen-client-urls", ns.listen_client_urls)
    return ServerConfig(
        name=ns.name,
        data_dir=Path(ns.data_dir or f"{ns.name}.etcd"),
        listen_client=tuple(_host_port("--listen-client-urls", u) for u in clients),
        advertise_client_urls=_urls("--advertise-client-urls", ns.advertise_client_urls),
        listen_peer=_host_port("--listen-peer-urls", listen_peer[0]),
        members=members,
        cluster_token=ns.initial_cluster_token,
        cluster_state=ns.initial_cluster_state,
        heartbeat_ms=ns.heartbeat_interval,
        election_ms=ns.election_timeout,
        snapshot_count=ns.snapshot_count,
        max_request_bytes=ns.max_request_bytes,
        max_txn_ops=ns.max_txn_ops,
        auto_compaction=auto_compaction,
        # etcd answers 500 "request timed out" after 5 s plus two election timeouts.
        request_timeout_s=5.0 + 2 * ns.election_timeout / 1000,
        wal_dir=Path(ns.wal_dir) if ns.wal_dir else None,
        pre_vote=ns.pre_vote,
        initial_election_tick_advance=ns.initial_election_tick_advance,
        max_snapshots=ns.max_snapshots or 1 << 30,
        client_idle_timeout_s=ns.client_idle_timeout,
        max_client_connections=ns.max_client_connections,
        ignored_flags=tuple(
            f"{flag}={getattr(ns, flag[2:].replace('-', '_'))}"
            for flag in _IGNORED
            if getattr(ns, flag[2:].replace("-", "_")) is not None
        ),
    )
