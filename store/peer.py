"""Peer transport: Raft messages over TCP, one outbound connection per peer.

Each node dials every other node and only ever sends on the connection it
dialled; it receives on the connections others dialled to it. A send never
blocks: when a peer is slow, partitioned or gone, messages past a buffer limit
are dropped (Raft retransmits), and TCP_USER_TIMEOUT makes the kernel give up
on a connection whose data goes unacknowledged, so a healed partition gets a
fresh connection instead of waiting out TCP's retransmission backoff.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

from store import wire
from store.raft.types import Message

log = logging.getLogger("store.peer")

SEND_BUFFER_LIMIT = 32 << 20
PENDING_LIMIT = 1024  # messages held while dialling
PENDING_BYTES = 8 << 20


class _Inbound(asyncio.Protocol):
    def __init__(self, transport_owner: PeerTransport) -> None:
        self._owner = transport_owner
        self._reader = wire.FrameReader()
        self._peer: int | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport = transport
        self._owner.inbound.add(transport)
        _tune(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._owner.inbound.discard(self._transport)
        if self._peer is not None and not self._owner.closed:
            self._owner.on_peer_lost(self._peer)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
            deliver = self._owner.deliver
            for payload in frames:
                if self._peer is None:
                    cluster_id, sender, urls = wire.decode_hello(payload)
                    self._owner.check_hello(cluster_id, sender)
                    self._owner.client_urls[sender] = urls
                    self._peer = sender
                    continue
                msg = wire.decode(payload)
                if msg.frm != self._peer or msg.to != self._owner.me:
                    raise wire.WireError(
                        f"message from raft id {msg.frm} to {msg.to} "
                        f"on the connection of {self._owner.name(self._peer)}"
                    )
                deliver(msg)
        except wire.WireError as e:
            log.warning("closing peer connection: %s", e)
            assert self._transport is not None
            self._transport.abort()


class _Outbound(asyncio.Protocol):
    def __init__(self, on_lost: Callable[[], None]) -> None:
        self._on_lost = on_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()

    def data_received(self, data: bytes) -> None:  # peers never answer on this side
        pass


def _tune(transport: asyncio.BaseTransport, user_timeout_ms: int = 0) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if user_timeout_ms and hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms)


class _Link:
    """The connection to one peer, redialled as needed."""

    def __init__(self, owner: PeerTransport, peer: int, host: str, port: int) -> None:
        self.owner = owner
        self.peer = peer
        self.host = host
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.dialling = False
        self.dropped = 0
        # Messages sent while a dial is in progress go out once it connects (a vote
        # answered to a peer that has just restarted must not be lost to the race);
        # a dial that fails drops them.
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.connected_at = 0.0

    def send(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            if len(self.pending) < PENDING_LIMIT and self.pending_bytes < PENDING_BYTES:
                self.pending.append(data)
                self.pending_bytes += len(data)
            else:
                self.dropped += 1
            self.dial()
            return
        if t.get_write_buffer_size() > SEND_BUFFER_LIMIT:
            self.dropped += 1
            return
        t.write(data)

    def dial(self, pause: float = 0.0) -> None:
        if self.dialling or self.owner.closed:
            return
        self.dialling = True
        asyncio.get_running_loop().create_task(self._dial(pause))

    async def _dial(self, pause: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        owner = self.owner
        if pause:
            await asyncio.sleep(pause)
        while not owner.closed:
            try:
                transport, _ = await asyncio.wait_for(
                    loop.create_connection(lambda: _Outbound(self._lost), self.host, self.port),
                    timeout=owner.dial_timeout,
                )
            except (OSError, TimeoutError):
                self.dropped += len(self.pending)
                self.pending.clear()
                self.pending_bytes = 0
                await asyncio.sleep(owner.dial_timeout / 4)
                continue
            transport = cast(asyncio.Transport, transport)
            _tune(transport, owner.user_timeout_ms)
            transport.write(wire.encode_hello(owner.cluster_id, owner.me, owner.my_client_urls))
            if owner.closed:
                transport.abort()
            else:
                self.transport = transport
                self.connected_at = loop.time()
                log.info("connected to peer %s", self.owner.name(self.peer))
                if self.pending:
                    transport.writelines(self.pending)
                    self.pending.clear()
                    self.pending_bytes = 0
            break
        self.dialling = False

    def _lost(self) -> None:
        self.transport = None
        log.info("connection to peer %s lost", self.owner.name(self.peer))
        if not self.owner.closed:
            self.owner.on_peer_lost(self.peer)
        # A peer that accepts and at once hangs up (it refuses our hello, or is
        # stopping) must not be redialled in a tight loop.
        lived = asyncio.get_running_loop().time() - self.connected_at
        self.dial(pause=self.owner.dial_timeout / 4 if lived < self.owner.dial_timeout else 0.0)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class PeerTransport:
    def __init__(
        self,
        me: int,
        cluster_id: int,
        peers: dict[int, tuple[str, int]],
        deliver: Callable[[Message], None],
        *,
        election_ms: int,
        client_urls: tuple[str, ...] = (),
        on_peer_lost: Callable[[int], None] = lambda peer: None,
        names: dict[int, str] | None = None,
    ) -> None:
        self.on_peer_lost = on_peer_lost  # a connection to or from that peer closed
        self.names = names or {}  # Raft id -> member name, for the log
        self.me = me
        self.my_client_urls = client_urls
        self.client_urls: dict[int, tuple[str, ...]] = {me: client_urls}
        self.cluster_id = cluster_id
        self.deliver = deliver
        self.dial_timeout = max(0.05, election_ms / 2000)
        self.user_timeout_ms = 2 * election_ms
        self.closed = False
        self._links = {p: _Link(self, p, h, port) for p, (h, port) in peers.items() if p != me}
        self._server: asyncio.Server | None = None
        self.inbound: set[asyncio.Transport] = set()

    def name(self, peer: int) -> str:
        """How the log names a peer: its member name, as the rest of the log does."""
        name = self.names.get(peer)
        return f"{name} (raft id {peer})" if name else f"raft id {peer}"

    def check_hello(self, cluster_id: int, sender: int) -> None:
        if cluster_id != self.cluster_id:
            raise wire.WireError(f"peer {sender} belongs to cluster {cluster_id:x}")
        if sender not in self._links:
            raise wire.WireError(f"unknown peer id {sender}")

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Inbound(self), host, port)
        for link in self._links.values():
            link.dial()

    def send(self, msg: Message) -> None:
        link = self._links.get(msg.to)
        if link is not None:
            link.send(wire.encode(msg))

    def connected(self, peer: int) -> bool:
        link = self._links.get(peer)
        return link is not None and link.transport is not None

    def dropped(self) -> dict[int, int]:
        return {p: link.dropped for p, link in self._links.items()}

    async def close(self) -> None:
        self.closed = True
        if self._server is not None:
            self._server.close()
        for link in self._links.values():
            link.close()
        for t in list(self.inbound):
            t.abort()
