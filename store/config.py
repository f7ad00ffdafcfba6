"""Command-line flags of `python -m store`: etcd's names, etcd's defaults."""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


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
        default=8 << 20,
        help="largest HTTP request body (etcd's v2 API takes 2 MiB values; default 8 MiB)",
    )
    p.add_argument("--enable-v2", type=_bool, nargs="?", const=True, default=True)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warn", "error"))
    return p


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
        # etcd answers 500 "request timed out" after 5 s plus two election timeouts.
        request_timeout_s=5.0 + 2 * ns.election_timeout / 1000,
    )
