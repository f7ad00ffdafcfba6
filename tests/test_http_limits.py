"""A member under descriptor pressure: client connections past the limit are
refused, so the member's own files (WAL, snapshots) and peers always find a
descriptor. (20,000 idle connections once made a member fail its snapshot with
EMFILE and exit 70; etcd keeps 150 descriptors in reserve.)"""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.local import free_port
from store.http.server import ConnectionLimit
from tests.v2_direct_backend import DirectBackend, ServerThread

FD_LIMIT = 300


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.02)


def _get(port: int, path: str) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def _up(port: int) -> bool:
    with contextlib.suppress(OSError):
        return _get(port, "/health")[0] == 200
    return False


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_the_limit_reserves_descriptors_like_etcd() -> None:
    assert ConnectionLimit.for_descriptors(1 << 20).maximum == (1 << 20) - 150
    assert ConnectionLimit.for_descriptors(200).maximum == 100  # never below half


def test_connections_past_the_limit_are_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    srv = ServerThread(DirectBackend(), limit=ConnectionLimit(5))
    srv.start()
    socks = []
    try:
        socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(5)]
        for s in socks:  # each one is served, so each one was accepted and counted
            s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        extra = socket.create_connection(("127.0.0.1", srv.port))
        assert _closed_by_server(extra)
        extra.close()
        socks.pop().close()  # a place frees up
        _wait(lambda: _get(srv.port, "/version")[0] == 200, 10, "connection taken again")
    finally:
        for s in socks:
            s.close()
        srv.stop()
    assert any("refusing client connections" in r.getMessage() for r in caplog.records)


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def test_a_member_out_of_descriptors_for_clients_still_takes_its_snapshot(
    tmp_path: Path,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < FD_LIMIT + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    client, peer = free_port(), free_port()
    argv = [
        sys.executable, "-m", "store", "--name", "n1", "--data-dir", str(tmp_path / "n1"),
        "--listen-client-urls", f"http://127.0.0.1:{client}",
        "--advertise-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"n1=http://127.0.0.1:{peer}", "--snapshot-count", "20",
    ]  # fmt: skip
    log_path = tmp_path / "n1.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, preexec_fn=_limit_fds)
    idle: list[socket.socket] = []
    try:
        _wait(lambda: _up(client) or proc.poll() is not None, 30, "healthy member")
        writer = http.client.HTTPConnection("127.0.0.1", client, timeout=10)
        writer.request("GET", "/version")
        writer.getresponse().read()
        for _ in range(FD_LIMIT + 50):  # more than the process can hold
            with contextlib.suppress(OSError):
                idle.append(socket.create_connection(("127.0.0.1", client), timeout=5))
        for i in range(60):  # three snapshots' worth of writes
            writer.request("PUT", f"/v2/keys/k{i}", body="value=v",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
            r = writer.getresponse()
            assert r.status == 201, (r.status, r.read())
            r.read()
        writer.request("GET", "/v2/keys/k59")
        assert json.loads(writer.getresponse().read())["node"]["value"] == "v"
        assert proc.poll() is None, log_path.read_text()[-2000:]
        text = log_path.read_text()
        assert "snapshot at index" in text and "refusing client connections" in text, text[-2000:]
    finally:
        for s in idle:
            s.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
