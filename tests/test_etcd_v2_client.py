"""The etcd v2 client's outcome rules, against a real socket server that answers as told.

Each scenario is one way a request can end: an answer (2xx, a precondition failure,
another 4xx, a 500 with errorCode 300), no answer before the timeout, a connection
reset after the request arrived, a refused connection. For each, a write must end ok /
fail / info as docs/harness.md says, and a read ok or fail (never info).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from checker.history import UNOBSERVED
from harness.client import HttpConnection, Node, NotSent
from harness.etcd_v2 import EtcdV2Client, encode
from harness.ops import Completion, Invocation

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answer(status: int, body: object, chunked: bool = False) -> Behaviour:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        data = json.dumps(body).encode()
        if chunked:
            head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            head += "Transfer-Encoding: chunked\r\n\r\n"
            half = len(data) // 2
            chunks = [data[:half], data[half:]]
            payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
            writer.write(head.encode() + payload)
        else:
            head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            writer.write(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        await writer.drain()

    return respond


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(30)  # never answers; the client's timeout ends it


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.transport.abort()  # RST after the request arrived


async def half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"action"')
    await writer.drain()
    writer.close()


async def run_one(behaviour: Behaviour | None, op: Invocation, timeout: float = 0.5) -> Completion:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert behaviour is not None
        try:
            await behaviour(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    if behaviour is None:  # nobody listens: the connection is refused
        server.close()
        await server.wait_closed()
    client = EtcdV2Client(timeout=timeout)
    await client.open(Node("n1", "127.0.0.1", port))
    try:
        return await client.invoke(op)
    finally:
        await client.close()
        if behaviour is not None:
            server.close()


def outcome(behaviour: Behaviour | None, op: Invocation) -> Completion:
    return asyncio.run(run_one(behaviour, op))


WRITE = Invocation("write", 3, "k")
CAS = Invocation("cas", [1, 2], "k")
READ = Invocation("read", key="k")
OK_NODE = {"action": "set", "node": {"key": "/k", "value": "3", "modifiedIndex": 5}}


def test_success_is_ok() -> None:
    assert outcome(answer(200, OK_NODE), WRITE) == Completion("ok", 3)
    assert outcome(answer(201, OK_NODE), CAS) == Completion("ok", [1, 2])
    assert outcome(answer(200, OK_NODE), READ) == Completion("ok", 3)


def test_a_chunked_answer_is_read_whole() -> None:
    assert outcome(answer(200, OK_NODE, chunked=True), READ) == Completion("ok", 3)


def test_reading_a_missing_key_is_an_ok_null() -> None:
    missing = {"errorCode": 100, "message": "Key not found", "cause": "/k", "index": 4}
    assert outcome(answer(404, missing), READ) == Completion("ok", None)


def test_a_directory_reads_as_its_sorted_values() -> None:
    body = {"node": {"dir": True, "nodes": [{"key": "/s/2", "value": "2"},
                                            {"key": "/s/10", "value": "10"}]}}  # fmt: skip
    assert outcome(answer(200, body), READ) == Completion("ok", [2, 10])


@pytest.mark.parametrize(
    ("code", "status", "name"),
    [(101, 412, "compare-failed"), (100, 404, "key-not-found"), (105, 412, "key-exists")],
)
def test_precondition_failures_fail_with_their_name(code: int, status: int, name: str) -> None:
    assert outcome(answer(status, {"errorCode": code, "message": "x"}), CAS) == Completion(
        "fail", [1, 2], name
    )


def test_other_refusals_fail() -> None:
    done = outcome(answer(400, {"errorCode": 209, "message": "Invalid field"}), WRITE)
    assert (done.type, done.error["errorCode"]) == ("fail", 209)


def test_a_500_leaves_a_write_undecided_and_fails_a_read() -> None:
    body = {
        "errorCode": 300,
        "message": "Raft Internal Error",
        "cause": "etcdserver: request timed out",
    }
    write = outcome(answer(500, body), WRITE)
    assert (write.type, write.value, write.error["errorCode"]) == ("info", 3, 300)
    read = outcome(answer(500, body), READ)
    assert (read.type, read.value) == ("fail", UNOBSERVED)


def test_a_timeout_leaves_a_write_undecided_and_fails_a_read() -> None:
    assert outcome(silent, WRITE) == Completion("info", 3, "timeout")
    assert outcome(silent, READ) == Completion("fail", UNOBSERVED, "timeout")


@pytest.mark.parametrize("behaviour", [reset, half_answer])
def test_a_connection_lost_after_sending_leaves_a_write_undecided(behaviour: Behaviour) -> None:
    done = outcome(behaviour, CAS)
    assert (done.type, done.value) == ("info", [1, 2]), done
    assert outcome(behaviour, READ).type == "fail"


def test_a_refused_connection_was_never_sent_so_the_write_failed() -> None:
    assert outcome(None, WRITE) == Completion("fail", 3, "connection-refused")


def test_the_connection_is_kept_alive_between_requests() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await answer(200, OK_NODE)(reader, writer)
            except asyncio.IncompleteReadError:
                return

    async def main() -> list[Completion]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        client = EtcdV2Client(timeout=1.0)
        await client.open(Node("n1", "127.0.0.1", server.sockets[0].getsockname()[1]))
        try:
            return [await client.invoke(WRITE) for _ in range(5)]
        finally:
            await client.close()
            server.close()

    assert [d.type for d in asyncio.run(main())] == ["ok"] * 5
    assert connections == 1


def test_requests_say_what_etcd_expects() -> None:
    assert encode(READ, "h:1").startswith(
        b"GET /v2/keys/k?recursive=true&sorted=true&quorum=true HTTP/1.1\r\nHost: h:1\r\n"
    )
    assert b"quorum" not in encode(READ, "h:1", reads="local")
    assert b"quorum=true" in encode(Invocation("read", key="k", final=True), "h:1", reads="local")
    assert encode(CAS, "h:1", prefix="p").endswith(b"\r\n\r\nvalue=2&prevValue=1")
    assert b"prevExist=false" in encode(Invocation("create", 1, "k"), "h:1")
    assert encode(Invocation("delete", key="k"), "h:1").startswith(b"DELETE /v2/keys/k ")
    assert encode(Invocation("add", 7, "s"), "h:1").startswith(b"PUT /v2/keys/s/7 ")


def test_after_a_refused_connection_the_client_waits_before_it_dials_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A client whose node is down fails a few operations a second, not thousands."""
    waits: list[float] = []

    async def no_sleep(delay: float) -> None:  # records the wait instead of waiting
        waits.append(delay)

    async def scenario() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        conn = HttpConnection("127.0.0.1", port, retry_after=5.0)
        monkeypatch.setattr(asyncio, "sleep", no_sleep)
        with pytest.raises(NotSent):
            await conn.request(b"GET / HTTP/1.1\r\n\r\n", 1.0)
        assert waits == []  # the first attempt dials at once
        with pytest.raises(NotSent):
            await conn.request(b"GET / HTTP/1.1\r\n\r\n", 1.0)
        assert len(waits) == 1 and 0 < waits[0] <= 5.0

    asyncio.run(scenario())
