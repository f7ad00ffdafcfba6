"""Durable storage for a store node: a write-ahead log and snapshot files (see disk.py)."""

from store.storage.disk import DEFAULT_KEEP_SNAPSHOTS, DEFAULT_SEGMENT_BYTES, DiskStorage
from store.storage.errors import StorageError
from store.storage.wal import WalStats

__all__ = [
    "DEFAULT_KEEP_SNAPSHOTS",
    "DEFAULT_SEGMENT_BYTES",
    "DiskStorage",
    "StorageError",
    "WalStats",
]
