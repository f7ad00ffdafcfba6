"""Failpoints, as etcd's gofail: named places in the store where a planted bug can be
turned on, to measure whether a test finds it (bench/detection.py, docs/store.md).

A member turns them on with `--failpoints name[=action],...` or the environment
variable SPLITBRAIN_FAILPOINTS (same syntax; the flag wins; the variable is read at
import too, so that the simulator and the harness's children see it). An action is `on`
(the default), `off` (leaves it off), or one with a number that the failpoint declares,
as gofail's `sleep(100)`: `answer-before-persist=flush(3600)` turns it on with its
buffer flushed every 3600 s (`argument()`). When none is on, `ACTIVE` is None and each
failpoint costs one module attribute load and an `is not None` test:

    if failpoints.ACTIVE is not None and "vote-no-log-check" in failpoints.ACTIVE:

A failpoint's number is read only where that failpoint is on, so it costs nothing off.

Failpoints are process-wide: the simulator (store/raft/simulator.py) runs every core
in one process, so a failpoint turned on there is on in every member, as a flag given
to every member of a cluster is.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ENV = "SPLITBRAIN_FAILPOINTS"


@dataclass(frozen=True)
class Action:
    """An action with a number that a failpoint takes: `name=flush(3600)`."""

    name: str
    means: str  # what the number is, for the refusal of a wrong one


@dataclass(frozen=True)
class Failpoint:
    name: str
    where: str  # the module it is planted in
    breaks: str  # what it breaks
    anomaly: str  # what a client should see
    needs: str  # the faults that expose it
    raft: bool  # planted in the Raft core or its Ready plan: the simulator runs it
    actions: tuple[Action, ...] = ()  # besides on and off
    # A black-box run can expose it (bench/detection.py measures those by default); one
    # that cannot is found only by the simulator's schedules (tests/test_failpoints.py).
    black_box: bool = True


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
    Failpoint("apply-before-commit", "store/raft/core.py, store/raft/log.py",
              "a member that does not lead applies log entries once they are on its own "
              "disk, before they commit (state machine safety); it skips the entries a new "
              "leader writes over them, as applied already",
              "lost writes acknowledged through that member; after the heal, reads through "
              "it return values that never committed, unlike the other members'",
              "a leader cut off in a minority with a follower that takes its writes "
              "(lagging-minority, deposed-leader)", True),
    Failpoint("forget-vote-on-restart", "store/raft/core.py",
              "the vote is not read back after a restart (term and vote not persisted "
              "before answering)",
              "two leaders in one term after a crash: lost writes",
              "a kill inside the round trip in which a new leader reaches its voters, or "
              "inside a split vote: the Raft simulator (docs/store.md)", True,
              black_box=False),
    Failpoint("answer-before-persist", "store/raft/plan.py, store/node.py",
              "votes and append answers leave before this member's fsync; a member keeps "
              "its WAL writes in a user-space buffer written once a second",
              "lost writes after a crash: a majority counted an entry its members had "
              "not written",
              "kills of a majority or all nodes with writes in flight", True,
              (Action("flush", "seconds between the member's flushes of its buffer, "
                      "1 by default (store/node.py LAZY_FLUSH_S)"),)),
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


@dataclass(frozen=True)
class Argument:
    action: str
    value: float

    def __str__(self) -> str:  # as parse_actions reads it back: 3600, 0.05
        number = int(self.value) if self.value.is_integer() else self.value
        return f"{self.action}({number})"


ACTIVE: frozenset[str] | None = None
# The number of each failpoint turned on with an action that has one (`flush(3600)`).
ARGUMENTS: dict[str, Argument] = {}


class FailpointError(ValueError):
    """A failpoint list that names no failpoint or an unknown action: says which."""


_CALL = re.compile(r"([a-z][a-z-]*)\((.*)\)")


def parse_actions(text: str, where: str = "--failpoints") -> dict[str, Argument | None]:
    """`name[=action],...` -> each failpoint turned on, with its action's number if the
    action has one; a later item about the same failpoint overrides an earlier one."""
    chosen: dict[str, Argument | None] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        name, _, action = item.partition("=")
        name, action = name.strip(), (action.strip() or "on")
        if name not in FAILPOINTS:
            raise FailpointError(f"{where}: unknown failpoint {name!r}; known: "
                                 f"{', '.join(sorted(FAILPOINTS))}")
        if action == "on":
            chosen[name] = None
        elif action == "off":
            chosen.pop(name, None)
        else:
            chosen[name] = _argument(FAILPOINTS[name], action, where)
    return chosen


def _argument(point: Failpoint, action: str, where: str) -> Argument:
    actions = {a.name: a for a in point.actions}
    call = _CALL.fullmatch(action)
    if call is None or call[1] not in actions:
        known = ", ".join(["on", "off", *(f"{a}(N)" for a in actions)])
        raise FailpointError(f"{where}: failpoint {point.name}: unknown action {action!r}; "
                             f"use {known}")
    try:
        value = float(call[2])
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise FailpointError(f"{where}: failpoint {point.name}: {action!r}: {call[1]} takes "
                             f"a finite number >= 0, the {actions[call[1]].means}")
    return Argument(call[1], value)


def parse(text: str, where: str = "--failpoints") -> frozenset[str]:
    """`name[=action],...` -> the names turned on."""
    return frozenset(parse_actions(text, where))


def spell(actions: Mapping[str, Argument | None]) -> str:
    """The failpoint list that `parse_actions` reads back as `actions`, sorted."""
    return ",".join(name if arg is None else f"{name}={arg}"
                    for name, arg in sorted(actions.items()))


def enable(names: Iterable[str], arguments: Mapping[str, Argument] | None = None) -> None:
    """Turn exactly `names` on (none: every failpoint off), some with a number."""
    global ACTIVE, ARGUMENTS
    chosen = frozenset(names)
    unknown = sorted(chosen - FAILPOINTS.keys())
    if unknown:
        raise FailpointError(f"unknown failpoint(s) {', '.join(unknown)}")
    stray = sorted((arguments or {}).keys() - chosen)
    if stray:
        raise FailpointError(f"an action's number for failpoint(s) not on: {', '.join(stray)}")
    ACTIVE = chosen or None
    ARGUMENTS = dict(arguments or {})


def _enable_actions(actions: Mapping[str, Argument | None]) -> None:
    enable(actions, {name: arg for name, arg in actions.items() if arg is not None})


def configure(flag: str | None) -> frozenset[str]:
    """The process's failpoints from the flag, else from SPLITBRAIN_FAILPOINTS."""
    text, where = (flag, "--failpoints") if flag is not None else (os.environ.get(ENV, ""), ENV)
    actions = parse_actions(text, where)
    _enable_actions(actions)
    return frozenset(actions)


def on(name: str) -> bool:
    """For code off the hot path; hot paths test `ACTIVE` themselves (above)."""
    return ACTIVE is not None and name in ACTIVE


def argument(name: str, action: str) -> float | None:
    """The number failpoint `name` was turned on with by `action` (`flush(3600)`: 3600.0),
    or None (off, or plain on). Read it only where the failpoint is on."""
    found = ARGUMENTS.get(name)
    return found.value if found is not None and found.action == action else None


def described() -> str:
    """The failpoints on, as a list `parse_actions` reads back (for a member's log)."""
    return spell({name: ARGUMENTS.get(name) for name in ACTIVE or ()})


# A member started with SPLITBRAIN_FAILPOINTS has them on from its first import, before
# any flag is read (the harness passes failpoints to members this way).
_enable_actions(parse_actions(os.environ.get(ENV, ""), ENV))
