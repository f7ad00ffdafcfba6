"""The etcd v2 keys state machine (pure and deterministic) and its commands."""

from store.v2.command import Command, decode, encode
from store.v2.errors import EtcdError
from store.v2.event import Event, NodeView
from store.v2.store import V2Store
from store.v2.watch import Watcher

__all__ = ["Command", "EtcdError", "Event", "NodeView", "V2Store", "Watcher", "decode", "encode"]
