"""The live progress of a run: elapsed time, ops/s, outcomes, faults in force.

On a terminal, a rich live line redrawn twice a second; otherwise (a CI log) a plain
line every ten seconds. Messages (setup steps, faults) are printed above it either way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from harness.recorder import Tally

PLAIN_EVERY_S = 10.0


@dataclass
class Snapshot:
    elapsed: float
    limit: float
    tally: Tally
    faults: list[str]


@dataclass
class Progress:
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    _console: Console | None = None
    _live: Live | None = None
    _last_plain: float = 0.0
    _last: tuple[float, int] = (0.0, 0)  # (time, completed) for the ops/s figure
    _rate: float = 0.0

    def __post_init__(self) -> None:
        self._console = Console(file=self.stream, highlight=False)

    def say(self, message: str) -> None:
        if self.quiet:
            return
        assert self._console is not None
        self._console.print(Text(message))

    def start(self) -> None:
        if self.quiet or not self.stream.isatty():
            return
        self._live = Live(Text(""), console=self._console, refresh_per_second=4, transient=True)
        self._live.start()

    def update(self, snapshot: Callable[[], Snapshot]) -> None:
        now = snapshot()
        done = sum(now.tally.completed.values())
        then, before = self._last
        if now.elapsed - then >= 1.0:
            self._rate = (done - before) / (now.elapsed - then)
            self._last = (now.elapsed, done)
        c = now.tally.completed
        faults = ", ".join(now.faults) if now.faults else "none"
        line = (
            f"{now.elapsed:6.1f}/{now.limit:.0f} s  {self._rate:7.0f} ops/s  "
            f"ok {c['ok']}  fail {c['fail']}  info {c['info']}  faults: {faults}"
        )
        if self._live is not None:
            self._live.update(Text(line))
        elif not self.quiet and time.monotonic() - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = time.monotonic()
            self.say(line)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
