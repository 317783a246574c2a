"""stop_task ends a background task even when the task swallows a cancellation (as Python 3.11's asyncio.wait_for
can, CPython gh-86296), where one cancel() and an await would wait forever."""

from __future__ import annotations

import asyncio

import pytest

from ragbus.background import stop_task


async def test_a_task_that_swallows_one_cancellation_is_stopped() -> None:
    swallowed = 0

    async def refresher() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # the first request is lost, as wait_for loses one on 3.11

    task = asyncio.create_task(refresher())
    await asyncio.sleep(0)
    task.cancel()  # one request, awaited: the task would run on for ever
    done, _ = await asyncio.wait({task}, timeout=0.2)
    assert not done and swallowed == 1
    await asyncio.wait_for(stop_task(task, grace_s=0.2), timeout=5)
    assert task.cancelled() and swallowed == 1


async def test_a_task_that_failed_raises_its_error_and_a_finished_one_nothing() -> None:
    async def fails() -> None:
        raise RuntimeError("broken")

    failed = asyncio.create_task(fails())
    await asyncio.wait({failed})
    with pytest.raises(RuntimeError, match="broken"):
        await stop_task(failed)

    async def returns() -> int:
        return 1

    finished = asyncio.create_task(returns())
    await asyncio.wait({finished})
    await stop_task(finished)
