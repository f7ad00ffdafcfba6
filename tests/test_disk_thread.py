"""store/storage/disk_thread.py: jobs run in order off the loop, results come back on it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from store.storage.disk_thread import DiskThread

DEADLINE_S = 10.0


def test_jobs_run_in_order_off_the_loop_and_call_back_on_it() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        disk = DiskThread(loop)
        ran: list[tuple[int, int]] = []  # (job, thread it ran in)
        called_back: list[tuple[int, int, BaseException | None]] = []
        all_done = loop.create_future()

        def job(n: int) -> None:
            ran.append((n, threading.get_ident()))

        def done(n: int, error: BaseException | None) -> None:
            called_back.append((n, threading.get_ident(), error))
            if n == 49:
                all_done.set_result(None)

        for n in range(50):
            disk.submit(lambda n=n: job(n), lambda error, n=n: done(n, error))
        assert disk.pending == 50
        await asyncio.wait_for(all_done, DEADLINE_S)
        disk.shutdown()
        assert [n for n, _ in ran] == list(range(50))
        assert all(thread != loop_thread for _, thread in ran)
        assert [n for n, _, _ in called_back] == list(range(50))
        assert all(thread == loop_thread and error is None for _, thread, error in called_back)
        assert disk.pending == 0

    asyncio.run(main())


def test_a_failing_job_hands_its_exception_to_the_callback_and_the_next_job_runs() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        disk = DiskThread(loop)
        results: list[BaseException | None] = []
        second = loop.create_future()

        def fail() -> None:
            raise OSError(5, "Input/output error")

        disk.submit(fail, results.append)
        disk.submit(lambda: None, lambda error: second.set_result(error))
        assert await asyncio.wait_for(second, DEADLINE_S) is None
        disk.shutdown()
        assert len(results) == 1 and isinstance(results[0], OSError)

    asyncio.run(main())


def test_shutdown_finishes_what_was_submitted_and_refuses_more() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        disk = DiskThread(loop)
        release = threading.Event()
        finished: list[int] = []

        def slow() -> None:
            release.wait(DEADLINE_S)
            finished.append(1)

        disk.submit(slow, lambda error: None)
        disk.submit(lambda: finished.append(2), lambda error: None)
        loop.call_later(0.05, release.set)  # shutdown must wait for both jobs
        await asyncio.to_thread(disk.shutdown)
        assert finished == [1, 2]
        with pytest.raises(RuntimeError):
            disk.submit(lambda: None, lambda error: None)

    asyncio.run(main())
