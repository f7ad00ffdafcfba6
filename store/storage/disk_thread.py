"""The thread that runs a member's disk writes, in order, off its event loop.

A ThreadPoolExecutor with ``run_in_executor`` costs a concurrent Future (with its
Condition), a Python-level semaphore, an asyncio Future chained to it and two
callbacks per job; on a fast disk that machinery cost more CPU than the write it
ran. Here a job is one ``SimpleQueue.put`` and, when done, one
``call_soon_threadsafe`` of its callback on the loop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

Done = Callable[[BaseException | None], None]


class DiskThread:
    """Runs ``job()`` calls one after another; ``done(exception or None)`` on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str = "wal") -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Done] | None] = (
            queue.SimpleQueue()
        )
        self._stopped = False
        self.pending = 0  # jobs submitted whose callback has not run yet (loop-side count)
        # A daemon: a member that dies without close() must not hang its exit on it.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], object], done: Done) -> None:
        if self._stopped:
            raise RuntimeError("the disk thread is shut down")
        self.pending += 1
        self._jobs.put((job, lambda error: self._finished(done, error)))

    def _finished(self, done: Done, error: BaseException | None) -> None:
        self.pending -= 1
        done(error)

    def shutdown(self) -> None:
        """Finish the jobs already submitted, then stop (their callbacks still go to
        the loop, if it runs)."""
        if not self._stopped:
            self._stopped = True
            self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        jobs = self._jobs
        call_soon = self._loop.call_soon_threadsafe
        while (item := jobs.get()) is not None:
            job, done = item
            error: BaseException | None = None
            try:
                job()
            except BaseException as e:  # handed to the loop, which decides
                error = e
            try:
                call_soon(done, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return
