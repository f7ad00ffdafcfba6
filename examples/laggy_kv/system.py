"""The laggy store as a splitbrain system: one small class (docs/testing-your-system.md).

It takes etcd's flags and answers /health, /version and /v2/stats/self like etcd, so it
extends `EtcdLike` and only says which program to start (with the node's Python). Name
it in a spec as `system: examples.laggy_kv.system:LaggyKV`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.system import EtcdLike, NodeSpec

SERVER = Path(__file__).with_name("server.py")


@dataclass
class LaggyKV(EtcdLike):
    name: str = "laggy-kv"
    lag_ms: int = 300

    def program_for(self, node: NodeSpec) -> list[str]:
        return [node.python, str(SERVER), "--lag-ms", str(self.lag_ms)]
