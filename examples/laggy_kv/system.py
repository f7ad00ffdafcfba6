"""The laggy store as a splitbrain system: one small class (docs/testing-your-system.md).

It takes etcd's flags and answers /health, /version and /v2/stats/self like etcd, so it
extends `EtcdLike` and only says which program to start. Name it in a spec as
`system: examples.laggy_kv.system:LaggyKV`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from harness.system import EtcdLike

SERVER = Path(__file__).with_name("server.py")


@dataclass
class LaggyKV(EtcdLike):
    name: str = "laggy-kv"
    lag_ms: int = 300
    program: tuple[str, ...] = (sys.executable, str(SERVER))

    def __post_init__(self) -> None:
        self.extra_args = (*self.extra_args, "--lag-ms", str(self.lag_ms))
