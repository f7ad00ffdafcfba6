"""The peer transport on 127.0.0.1: messages arrive, strangers are turned away."""

from __future__ import annotations

import asyncio
import itertools
import socket

from store import wire
from store.peer import PeerTransport
from store.raft.types import Entry, Message, MsgType


def free_ports(n: int, start: int = 24000) -> list[int]:
    ports = []
    for port in range(start, 32000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == n:
            return ports
    raise RuntimeError("no free ports below 32768")


async def until(cond, deadline: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


def test_messages_flow_both_ways_and_client_urls_are_learned():
    async def main():
        p1, p2 = free_ports(2)
        addrs = {1: ("127.0.0.1", p1), 2: ("127.0.0.1", p2)}
        got: dict[int, list[Message]] = {1: [], 2: []}
        a = PeerTransport(1, 7, addrs, got[1].append, election_ms=500, client_urls=("http://a",))
        b = PeerTransport(2, 7, addrs, got[2].append, election_ms=500, client_urls=("http://b",))
        await a.listen(*addrs[1])
        await b.listen(*addrs[2])
        await until(lambda: a.connected(2) and b.connected(1))
        big = Message(MsgType.APPEND, 2, 1, 3, entries=(Entry(3, 1, data=b"x" * 200_000),))
        for i in range(50):
            a.send(Message(MsgType.HEARTBEAT, 2, 1, 3, commit=i))
        a.send(big)
        b.send(Message(MsgType.HEARTBEAT_RESP, 1, 2, 3))
        await until(lambda: len(got[2]) == 51 and len(got[1]) == 1)
        assert [m.commit for m in got[2][:50]] == list(range(50))  # in order
        assert got[2][50] == big
        assert a.client_urls[2] == ("http://b",) and b.client_urls[1] == ("http://a",)
        await a.close()
        await b.close()

    asyncio.run(main())


def test_a_peer_of_another_cluster_or_garbage_is_disconnected():
    async def main():
        (port,) = free_ports(1)
        got: list[Message] = []
        t = PeerTransport(1, 7, {1: ("127.0.0.1", port)}, got.append, election_ms=500)
        await t.listen("127.0.0.1", port)
        for hello in (wire.encode_hello(8, 2), b"GET / HTTP/1.1\r\n\r\n" + bytes(64)):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(hello)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the node
            writer.close()
        assert got == [] and t.inbound == set()
        await t.close()

    asyncio.run(main())


def test_sending_to_a_dead_peer_neither_blocks_nor_raises():
    async def main():
        p1, p2 = free_ports(2)
        addrs = {1: ("127.0.0.1", p1), 2: ("127.0.0.1", p2)}
        t = PeerTransport(1, 7, addrs, lambda m: None, election_ms=200)
        await t.listen(*addrs[1])
        for _ in range(2000):
            t.send(Message(MsgType.HEARTBEAT, 2, 1, 1))
        # 1024 wait for the dial in progress; when it fails they are dropped too.
        assert t.dropped()[2] == 2000 - 1024
        await until(lambda: t.dropped()[2] == 2000)
        await t.close()

    asyncio.run(main())


def test_messages_sent_while_dialling_arrive_once_the_peer_is_up():
    async def main():
        p1, p2 = free_ports(2)
        addrs = {1: ("127.0.0.1", p1), 2: ("127.0.0.1", p2)}
        got: list[Message] = []
        a = PeerTransport(1, 7, addrs, lambda m: None, election_ms=500)
        b = PeerTransport(2, 7, addrs, got.append, election_ms=500)
        await b.listen(*addrs[2])
        await a.listen(*addrs[1])  # starts dialling 2
        assert not a.connected(2)
        a.send(Message(MsgType.VOTE_RESP, 2, 1, 5))  # races the dial: held, not dropped
        await until(lambda: len(got) == 1)
        assert got[0].type == MsgType.VOTE_RESP and a.dropped()[2] == 0
        await a.close()
        await b.close()

    asyncio.run(main())


def test_a_peer_that_hangs_up_at_once_is_not_redialled_in_a_tight_loop():
    async def main():
        p1, p2 = free_ports(2)
        accepted: list[float] = []
        loop = asyncio.get_running_loop()

        async def hang_up(reader, writer):
            accepted.append(loop.time())
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", p2)
        addrs = {1: ("127.0.0.1", p1), 2: ("127.0.0.1", p2)}
        t = PeerTransport(1, 7, addrs, lambda m: None, election_ms=400)
        await t.listen(*addrs[1])
        await until(lambda: len(accepted) >= 4)
        await t.close()
        server.close()
        gaps = [b - a for a, b in itertools.pairwise(accepted)]
        # Each redial waits a quarter of the dial timeout (0.2 s / 4) at least.
        assert min(gaps) >= t.dial_timeout / 4 * 0.9, gaps

    asyncio.run(main())


def test_the_log_names_peers_by_member_name(caplog) -> None:
    async def main():
        p1, p2 = free_ports(2, start=25000)
        addrs = {1: ("127.0.0.1", p1), 2: ("127.0.0.1", p2)}
        names = {1: "n1", 2: "n2"}
        a = PeerTransport(1, 7, addrs, lambda m: None, election_ms=500, names=names)
        b = PeerTransport(2, 7, addrs, lambda m: None, election_ms=500, names=names)
        await a.listen(*addrs[1])
        await b.listen(*addrs[2])
        await until(lambda: a.connected(2) and b.connected(1))
        await a.close()
        await b.close()

    with caplog.at_level("INFO", logger="store.peer"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "store.peer"]
    assert "connected to peer n2 (raft id 2)" in lines, lines
    assert not any("peer 2 " in line or line.endswith("peer 2") for line in lines), lines
