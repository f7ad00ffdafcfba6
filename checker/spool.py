"""Operations set aside by key, so a long history is checked one group of keys at a time.

Keys are independent (P-compositionality), so the checker never needs every operation at
once: `Spool` takes the paired operations as they stream out of the reader and keeps them
in memory up to `spill_above`; past that, it writes them to temporary files, one per
bucket of keys (a key's bucket is its hash modulo `buckets`), in batches of pickled
operations. A bucket read back holds every operation of its keys, in the order they were
added, so each key's operations are exactly those an in-memory check would have had.
Memory while reading: one batch per bucket; while checking: one bucket (per worker).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from checker.history import Operation
from checker.models.base import freeze

SPILL_ABOVE = 200_000  # operations kept in memory before the spool goes to disk
BUCKETS = 64
BATCH = 4_096  # operations pickled together


class Spool:
    def __init__(self, spill_above: int | None = None, buckets: int | None = None,
                 directory: str | None = None) -> None:
        self.spill_above = SPILL_ABOVE if spill_above is None else spill_above
        self.buckets = BUCKETS if buckets is None else buckets
        self.directory = directory
        self.count = 0
        self.fs: set[str] = set()
        self.keyed = False
        self._memory: list[Operation] | None = []
        self._pending: list[list[Operation]] = []
        self._files: list[IO[bytes] | None] = []
        self._sizes: list[int] = []
        self._dir: str | None = None

    @property
    def spilled(self) -> bool:
        return self._memory is None

    def add(self, op: Operation) -> None:
        self.count += 1
        self.fs.add(op.f)
        self.keyed = self.keyed or op.key is not None
        if self._memory is not None:
            self._memory.append(op)
            if len(self._memory) > self.spill_above:
                self._spill()
            return
        self._put(op)

    def _spill(self) -> None:
        held, self._memory = self._memory or [], None
        self._dir = tempfile.mkdtemp(prefix="splitbrain-keys-", dir=self.directory)
        self._pending = [[] for _ in range(self.buckets)]
        self._files = [None] * self.buckets
        self._sizes = [0] * self.buckets
        for op in held:
            self._put(op)

    def _put(self, op: Operation) -> None:
        b = hash(freeze(op.key)) % self.buckets
        pending = self._pending[b]
        pending.append(op)
        self._sizes[b] += 1
        if len(pending) >= BATCH:
            self._flush(b)

    def _flush(self, b: int) -> None:
        if not self._pending[b]:
            return
        out = self._files[b]
        if out is None:
            assert self._dir is not None
            out = self._files[b] = open(os.path.join(self._dir, f"{b}.pickle"), "wb")  # noqa: SIM115
        pickle.dump(self._pending[b], out, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending[b] = []

    def finish(self) -> None:
        """No more operations: the buckets are written out and can be read."""
        for b in range(len(self._files)):
            self._flush(b)
            out = self._files[b]
            if out is not None:
                out.close()
                self._files[b] = None

    def in_memory(self) -> list[Operation]:
        """Every operation, when the spool never spilled."""
        if self._memory is None:
            raise RuntimeError("the spool went to disk; read it bucket by bucket")
        return self._memory

    def sizes(self) -> list[tuple[int, int]]:
        """(bucket, operations) of every non-empty bucket, the largest first."""
        return sorted(((b, n) for b, n in enumerate(self._sizes) if n), key=lambda s: -s[1])

    def bucket(self, b: int) -> list[Operation]:
        return list(self._read(b))

    def _read(self, b: int) -> Iterator[Operation]:
        assert self._dir is not None
        with open(os.path.join(self._dir, f"{b}.pickle"), "rb") as stream:
            while True:
                try:
                    batch: list[Operation] = pickle.load(stream)
                except EOFError:
                    return
                yield from batch

    def close(self) -> None:
        for out in self._files:
            if out is not None:
                out.close()
        self._files = []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
