"""The small endpoints: /version, /health, /v2/stats/*, /v2/members, /v2/machines."""

from __future__ import annotations

import json
import os
import resource

from store.http import responses as r
from store.http.backend import Backend
from store.http.request import Request

VERSION_BODY = b'{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}'
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _go_json(obj: object) -> bytes:
    s = _dumps(obj)
    # Go's HTML-safe escapes (json.dumps already escapes non-ASCII and controls).
    return s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e").encode()


def _only(req: Request, allowed: tuple[str, ...]) -> bytes | None:
    """etcd's allowMethod: None if allowed, else the 405 answer."""
    if req.method in allowed:
        return None
    return r.method_not_allowed(req.version, ",".join(allowed).encode(), req.tail, req.head)


class Endpoints:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.exact = {
            "/version": self.version,
            "/health": self.health,
            "/v2/stats/self": self.stats_self,
            "/v2/stats/leader": self.stats_leader,
            "/v2/stats/store": self.stats_store,
            "/v2/members": self.members,
            "/v2/machines": self.machines,
            "/metrics": self.metrics,
        }

    def version(self, req: Request) -> bytes:
        return _only(req, ("GET",)) or r.json_ok(req.version, VERSION_BODY, req.tail, req.head)

    def health(self, req: Request) -> bytes:
        denied = _only(req, ("GET",))
        if denied:
            return denied
        if self.backend.health():
            return r.sniffed_text(req.version, 200, b'{"health":"true"}', req.tail, req.head)
        return r.plain_error(req.version, 503, '{"health":"false"}', req.tail, req.head)

    def stats_self(self, req: Request) -> bytes:
        body = _go_json(self.backend.stats_self())
        return _only(req, ("GET",)) or r.json_ok(req.version, body, req.tail, req.head)

    def stats_leader(self, req: Request) -> bytes:
        denied = _only(req, ("GET",))
        if denied:
            return denied
        stats = self.backend.stats_leader()
        if stats is None:
            return r.http_error_json(req.version, 403, "not current leader", req.tail, req.head)
        return r.json_ok(req.version, _go_json(stats), req.tail, req.head)

    def stats_store(self, req: Request) -> bytes:
        denied = _only(req, ("GET",))
        if denied:
            return denied
        return r.json_ok(req.version, self.backend.store.stats_json(), req.tail, req.head)

    def members(self, req: Request) -> bytes:
        # etcd also takes POST, PUT and DELETE here (membership changes); we do not.
        denied = _only(req, ("GET",))
        if denied:
            return denied
        body = _go_json({"members": self.backend.members()}) + b"\n"
        cluster = r.cluster_line(self.backend.cluster_id)
        return r.json_ok(req.version, body, req.tail, req.head, cluster)

    def member(self, req: Request, name: str) -> bytes:
        """/v2/members/leader: the leader's member entry, 503 during an election."""
        denied = _only(req, ("GET",))
        if denied:
            return denied
        cluster = r.cluster_line(self.backend.cluster_id)
        if name != "leader":
            return r.http_error_json(req.version, 404, "Not found", req.tail, req.head, cluster)
        leader = self.backend.stats_self().get("leaderInfo", {}).get("leader", "")
        for m in self.backend.members():
            if leader and m.get("id") == leader:
                body = _go_json(m) + b"\n"
                return r.json_ok(req.version, body, req.tail, req.head, cluster)
        return r.http_error_json(req.version, 503, "During election", req.tail, req.head, cluster)

    def machines(self, req: Request) -> bytes:
        denied = _only(req, ("GET", "HEAD"))
        if denied:
            return denied
        urls = [u for m in self.backend.members() for u in m.get("clientURLs", ())]
        return r.sniffed_text(req.version, 200, ", ".join(urls).encode(), req.tail, req.head)

    def metrics(self, req: Request) -> bytes:
        """A few of etcd's Prometheus metrics, in its names (text format 0.0.4)."""
        denied = _only(req, ("GET", "HEAD"))
        if denied:
            return denied
        b = self.backend
        st = b.stats_self()
        try:
            fds = len(os.listdir("/proc/self/fd"))
        except OSError:
            fds = 0
        rows = [
            ("etcd_server_has_leader", "gauge", "Whether a leader exists.", int(b.health())),
            ("etcd_server_is_leader", "gauge", "Whether this member is the leader.",
             int(st.get("state") == "StateLeader")),
            ("etcd_server_proposals_applied_total", "gauge",
             "The total number of consensus proposals applied.", b.raft_index),
            ("etcd_server_term", "gauge", "The current Raft term.", b.raft_term),
            ("etcd_disk_wal_saves_total", "counter", "WAL writes.", st.get("walSaves", 0)),
            ("etcd_disk_wal_fsyncs_total", "counter", "WAL fsyncs.", st.get("walFsyncs", 0)),
            ("process_open_fds", "gauge", "Number of open file descriptors.", fds),
            ("process_max_fds", "gauge", "Maximum number of open file descriptors.",
             resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
        ]  # fmt: skip
        body = "".join(
            f"# HELP {name} {text}\n# TYPE {name} {kind}\n{name} {value}\n"
            for name, kind, text, value in rows
        ).encode()
        return r.metrics(req.version, body, req.tail, req.head)
