"""The labels on everything a run creates in Docker, and who owns it.

Every container, network and volume carries `splitbrain` plus the run id and its owner:
the host process (pid and its start time) that made it. A resource whose owner process
is gone is a leftover of a killed run, removed at the next start. `cluster up` marks its
resources as owned by nobody (`manual`): they live until `cluster down`.
"""

from __future__ import annotations

import os
from pathlib import Path

LABEL = "splitbrain"
RUN = f"{LABEL}.run"
OWNER = f"{LABEL}.owner"
CHECKOUT = f"{LABEL}.checkout"  # on node images: the source tree that built them
MANUAL = "manual"


def process_identity(pid: int) -> str | None:
    """`pid:starttime` of a live process (the start time tells a reused pid apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return f"{pid}:{fields[19]}"  # field 22 of stat: starttime


def owner_here() -> str:
    me = process_identity(os.getpid())
    return me if me is not None else f"{os.getpid()}:0"


def owner_alive(owner: str | None) -> bool:
    """Whether the owner of a resource still runs (manual resources always count as alive)."""
    if owner == MANUAL:
        return True
    if not owner or ":" not in owner:
        return False
    pid = owner.split(":", 1)[0]
    return pid.isdigit() and process_identity(int(pid)) == owner


def labels(run_id: str, owner: str) -> dict[str, str]:
    return {LABEL: "1", RUN: run_id, OWNER: owner}
