"""Failpoints, as etcd's gofail: named places in the store where a planted bug can be
turned on, to measure whether a test finds it (bench/detection.py, docs/store.md).

A member turns them on with `--failpoints name[=action],...` or the environment
variable SPLITBRAIN_FAILPOINTS (same syntax; the flag wins; the variable is read at
import too, so that the simulator and the harness's children see it). The one action today is
`on` (the default; `off` is accepted and leaves it off). When none is on, `ACTIVE` is
None and each failpoint costs one module attribute load and an `is not None` test:

    if failpoints.ACTIVE is not None and "vote-no-log-check" in failpoints.ACTIVE:

Failpoints are process-wide: the simulator (store/raft/simulator.py) runs every core
in one process, so a failpoint turned on there is on in every member, as a flag given
to every member of a cluster is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

ENV = "SPLITBRAIN_FAILPOINTS"


@dataclass(frozen=True)
class Failpoint:
    name: str
    where: str  # the module it is planted in
    breaks: str  # what it breaks
    anomaly: str  # what a client should see
    needs: str  # the faults that expose it
    raft: bool  # planted in the Raft core or its Ready plan: the simulator runs it


FAILPOINTS: dict[str, Failpoint] = {f.name: f for f in (
    Failpoint("commit-own-match", "store/raft/core.py",
              "the leader commits an entry once it is on its own disk, without a majority",
              "lost writes: acknowledged writes vanish when that leader is cut off",
              "a leader cut off from the majority (isolate, kill, pause)", True),
    Failpoint("vote-no-log-check", "store/raft/core.py",
              "votes and pre-votes are granted without Raft's log up-to-date check, and "
              "a follower truncates what such a leader overwrites, committed entries too "
              "(textbook Raft; our store refuses that only to catch this very bug)",
              "lost writes: a node behind wins and overwrites committed entries",
              "a lagging node winning an election (lagging-minority, leader churn)", True),
    Failpoint("lease-read-no-check-quorum", "store/raft/core.py",
              "the leader serves quorum reads at once, as if it held a lease, and never "
              "steps down for lack of a quorum (check-quorum off)",
              "stale reads from a leader cut off from the majority",
              "an isolated leader while the others elect a new one", True),
    Failpoint("append-from-stale-term", "store/raft/core.py",
              "a follower answers a leader of an older term as if it still led: takes its "
              "appends (acknowledging what it does not store) and confirms its heartbeats",
              "lost writes acknowledged by a deposed leader; stale reads through it",
              "a deposed leader coming back (partition heal, resume after pause)", True),
    Failpoint("forget-vote-on-restart", "store/raft/core.py",
              "the vote is not read back after a restart (term and vote not persisted "
              "before answering)",
              "two leaders in one term after a crash: lost writes",
              "a kill during an election (partition then kill, leader churn)", True),
    Failpoint("answer-before-persist", "store/raft/plan.py, store/node.py",
              "votes and append answers leave before this member's fsync; a member keeps "
              "its WAL writes in a user-space buffer written once a second",
              "lost writes after a crash: a majority counted an entry its members had "
              "not written",
              "kills of a majority or all nodes with writes in flight", True),
    Failpoint("read-without-readindex", "store/node.py",
              "quorum GETs are served from the member's own state, without ReadIndex",
              "stale reads from any member behind the leader (a minority, a lagging "
              "follower)", "a partition of a minority; reads right after writes", False),
    Failpoint("read-before-apply", "store/node.py",
              "a quorum read is answered once ReadIndex confirms the read index, without "
              "waiting until this member has applied up to it",
              "stale reads from a member whose apply lags (a follower catching up)",
              "a member that rejoins behind (partition heal, restart); reads right after "
              "writes", False),
)}


ACTIVE: frozenset[str] | None = None


class FailpointError(ValueError):
    """A failpoint list that names no failpoint or an unknown action: says which."""


def parse(text: str, where: str = "--failpoints") -> frozenset[str]:
    """`name[=action],...` -> the names turned on."""
    on: set[str] = set()
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        name, _, action = item.partition("=")
        name, action = name.strip(), (action.strip() or "on")
        if name not in FAILPOINTS:
            raise FailpointError(f"{where}: unknown failpoint {name!r}; known: "
                                 f"{', '.join(sorted(FAILPOINTS))}")
        if action not in ("on", "off"):
            raise FailpointError(f"{where}: failpoint {name}: unknown action {action!r}; "
                                 "use on or off")
        if action == "on":
            on.add(name)
        else:
            on.discard(name)
    return frozenset(on)


def enable(names: Iterable[str]) -> None:
    """Turn exactly `names` on (none: every failpoint off)."""
    global ACTIVE
    chosen = frozenset(names)
    unknown = sorted(chosen - FAILPOINTS.keys())
    if unknown:
        raise FailpointError(f"unknown failpoint(s) {', '.join(unknown)}")
    ACTIVE = chosen or None


def configure(flag: str | None) -> frozenset[str]:
    """The process's failpoints from the flag, else from SPLITBRAIN_FAILPOINTS."""
    text, where = (flag, "--failpoints") if flag is not None else (os.environ.get(ENV, ""), ENV)
    names = parse(text, where)
    enable(names)
    return names


def on(name: str) -> bool:
    """For code off the hot path; hot paths test `ACTIVE` themselves (above)."""
    return ACTIVE is not None and name in ACTIVE


# A member started with SPLITBRAIN_FAILPOINTS has them on from its first import, before
# any flag is read (the harness passes failpoints to members this way).
enable(parse(os.environ.get(ENV, ""), ENV))
