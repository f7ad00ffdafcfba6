"""What one simulated run reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from checker.history import Op

DEFAULT_STEPS = 4000  # about 4 s of virtual time (Readies without a write take no step)


@dataclass
class SimResult:
    seed: int
    nodes: int
    steps: int = DEFAULT_STEPS
    faults: str = "default"  # the preset's name
    machine: str = "kv"  # the state machine (simulator.MACHINES)
    violation: str | None = None  # a safety invariant, liveness or linearizability failure
    linearizable: bool | str | None = None  # the checker's verdict (None: not reached)
    history: list[Op] = field(default_factory=list)
    events: int = 0
    virtual_ms: int = 0
    elections: int = 0  # distinct leader terms
    restarts: int = 0
    compactions: int = 0
    v3_compactions: int = 0  # v3 compaction commands proposed (machine v3)
    snapshots_sent: int = 0
    snapshots_installed: int = 0
    early_sends: int = 0  # Readies whose plan sent messages before the fsync
    power_losses: int = 0  # every node crashed at once
    crashes_before_fsync: int = 0  # a node died with a write in flight
    crashes_after_early_send: int = 0  # ... after sending that Ready's early messages
    messages: int = 0
    dropped: int = 0
    duplicated: int = 0
    ops: dict[str, int] = field(default_factory=lambda: {"ok": 0, "fail": 0, "info": 0})
    log: list[str] = field(default_factory=list)  # faults and leaders, with virtual time

    @property
    def ok(self) -> bool:
        return self.violation is None

    def replay(self) -> str:
        """The command that replays this run."""
        cmd = f"python -m store.raft.simulator --seeds {self.seed}:{self.seed + 1}"
        if self.nodes != 3:
            cmd += f" --nodes {self.nodes}"
        if self.steps != DEFAULT_STEPS:
            cmd += f" --steps {self.steps}"
        if self.faults != "default":
            cmd += f" --faults {self.faults}"
        if self.machine != "kv":
            cmd += f" --machine {self.machine}"
        return cmd
