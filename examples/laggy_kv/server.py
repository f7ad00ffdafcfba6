"""A deliberately wrong key-value store: asynchronous replication, reads served locally.

The first member of `--initial-cluster` is the primary. It applies every write (with
etcd v2's compare-and-swap rules) and answers at once; followers forward writes to it
and hear of them only `--lag-ms` later, but answer reads from their own copy. So a read
on a follower right after a write returns the old value: a stale read, which a
linearizability checker must catch. It speaks just enough of etcd's v2 API and flags
for splitbrain to test it; see docs/testing-your-system.md. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/v2/keys/"


class Node:
    def __init__(self, name: str, members: list[tuple[str, str]], lag_s: float) -> None:
        self.name = name
        self.members = members  # (name, peer url), in --initial-cluster order
        self.primary = members[0][0]
        self.lag_s = lag_s
        self.data: dict[str, str] = {}
        self.index = 0
        self.lock = threading.Lock()

    def write(self, key: str, form: dict[str, str], method: str) -> tuple[int, dict]:
        """Apply a write on the primary: (status, body) as etcd v2 answers it."""
        with self.lock:
            current = self.data.get(key)
            if "prevValue" in form and current != form["prevValue"]:
                code = 100 if current is None else 101
                return (404 if code == 100 else 412), {"errorCode": code, "message": "failed"}
            if form.get("prevExist") == "false" and current is not None:
                return 412, {"errorCode": 105, "message": "Key already exists"}
            if method == "DELETE":
                if current is None:
                    return 404, {"errorCode": 100, "message": "Key not found"}
                del self.data[key]
                value = None
            else:
                value = form.get("value", "")
                self.data[key] = value
            self.index += 1
            change = {"key": key, "value": value, "index": self.index}
        for name, peer in self.members:
            if name != self.name:
                threading.Timer(self.lag_s, replicate, (peer, change)).start()
        node = {"key": "/" + key, "modifiedIndex": self.index, "createdIndex": self.index}
        if value is not None:
            node["value"] = value
        return (201 if current is None else 200), {"action": "set", "node": node}

    def apply(self, change: dict) -> None:
        with self.lock:
            if change["value"] is None:
                self.data.pop(change["key"], None)
            else:
                self.data[change["key"]] = change["value"]

    def read(self, key: str) -> tuple[int, dict]:
        with self.lock:
            children = {k: v for k, v in self.data.items() if k.startswith(key + "/")}
            if key in self.data:
                return 200, {"action": "get", "node": {"key": "/" + key, "value": self.data[key]}}
        if children:
            nodes = [{"key": "/" + k, "value": v} for k, v in sorted(children.items())]
            return 200, {"action": "get", "node": {"key": "/" + key, "dir": True, "nodes": nodes}}
        return 404, {"errorCode": 100, "message": "Key not found"}


def replicate(peer: str, change: dict) -> None:
    request = urllib.request.Request(
        peer + "/_replicate", json.dumps(change).encode(), method="POST"
    )
    # A follower that is down misses it: lagging and lossy, as promised.
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request, timeout=2).read()


def handler_for(node: Node, primary_client: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/health":
                return self.answer(200, {"health": "true"})
            if path == "/version":
                return self.answer(200, {"etcdserver": "laggy-kv 0.1"})
            if path == "/v2/stats/self":
                state = "StateLeader" if node.name == node.primary else "StateFollower"
                return self.answer(
                    200, {"id": node.name, "state": state, "leaderInfo": {"leader": node.primary}}
                )
            if path.startswith(PREFIX):
                return self.answer(*node.read(urllib.parse.unquote(path[len(PREFIX) :])))
            return self.answer(404, {"message": "not found"})

        def write(self, method: str) -> None:
            path = urllib.parse.urlsplit(self.path).path
            raw = self.body()
            if not path.startswith(PREFIX):
                return self.answer(404, {"message": "not found"})
            if primary_client is not None:  # a follower forwards writes to the primary
                request = urllib.request.Request(
                    primary_client + self.path, raw, method=method, headers=dict(self.headers)
                )
                try:
                    with urllib.request.urlopen(request, timeout=5) as reply:
                        return self.answer(reply.status, json.loads(reply.read()))
                except urllib.error.HTTPError as e:
                    return self.answer(e.code, json.loads(e.read() or b"{}"))
                except OSError:
                    return self.answer(500, {"errorCode": 300, "message": "primary unreachable"})
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            return self.answer(*node.write(urllib.parse.unquote(path[len(PREFIX) :]), form, method))

        def do_PUT(self) -> None:
            self.write("PUT")

        def do_DELETE(self) -> None:
            self.write("DELETE")

        def do_POST(self) -> None:
            if self.path == "/_replicate":
                node.apply(json.loads(self.body()))
                return self.answer(200, {})
            return self.answer(404, {"message": "not found"})

    return Handler


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--listen-client-urls", required=True)
    p.add_argument("--listen-peer-urls", required=True)
    p.add_argument("--initial-cluster", required=True)
    p.add_argument("--lag-ms", type=float, default=300)
    args, _ = p.parse_known_args()  # etcd's other flags mean nothing here
    members = [tuple(m.split("=", 1)) for m in args.initial_cluster.split(",")]
    node = Node(args.name, members, args.lag_ms / 1000)  # type: ignore[arg-type]
    # The primary's client URL: its peer URL's host, with the client port the primary
    # announced... which a follower cannot know from etcd's flags alone, so the primary
    # also serves client requests on its peer port.
    primary_peer = members[0][1]
    client = urllib.parse.urlsplit(args.listen_client_urls.split(",")[0])
    peer = urllib.parse.urlsplit(args.listen_peer_urls.split(",")[0])
    forward = None if node.name == node.primary else primary_peer
    servers = [
        ThreadingHTTPServer((client.hostname, client.port), handler_for(node, forward)),
        ThreadingHTTPServer((peer.hostname, peer.port), handler_for(node, None)),
    ]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"{node.name}: serving; primary {node.primary}, lag {node.lag_s * 1000:g} ms", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
