"""What the HTTP server needs from a member: the node driver implements it."""

from __future__ import annotations

from typing import Protocol

from store.config import ServerConfig
from store.v2.command import Command
from store.v2.event import Event
from store.v2.store import V2Store
from store.v3.command import V3Command
from store.v3.messages import Response
from store.v3.state import V3Store


class Backend(Protocol):
    store: V2Store  # local state: a default GET reads it directly (may be stale)
    v3: V3Store  # local v3 state: serializable reads read it directly
    caught_up: bool  # a ReadIndex barrier has passed since the start: local state is current
    cluster_id: str  # hex, for X-Etcd-Cluster-Id
    cfg: ServerConfig

    @property
    def raft_index(self) -> int:  # applied raft index: X-Raft-Index
        ...

    @property
    def raft_term(self) -> int:  # X-Raft-Term
        ...

    async def propose(self, cmd: Command) -> Event:
        """Returns once ``cmd`` is applied on this member. Raises EtcdError: the
        apply's error, or 300 "etcdserver: request timed out" and the like."""
        ...

    async def linearize(self) -> None:
        """A ReadIndex barrier for quorum=true GETs; raises EtcdError 300 on a
        timeout or without a leader."""
        ...

    def stats_self(self) -> dict: ...  # /v2/stats/self

    def stats_leader(self) -> dict | None: ...  # /v2/stats/leader; None: not the leader (403)

    def members(self) -> list[dict]: ...  # /v2/members {"members": [...]}

    def health(self) -> bool: ...  # /health

    @property
    def member_id(self) -> int: ...

    @property
    def leader_id(self) -> int: ...  # 0: none known

    @property
    def raft_commit(self) -> int: ...

    async def propose_v3(self, cmd: V3Command) -> Response:
        """The v3 write's response once applied here; raises V3Error."""
        ...

    async def linearize_v3(self) -> None:
        """The ReadIndex barrier for linearizable v3 reads; raises V3Error (14)."""
        ...
