"""Stopping a background task for sure.

`task.cancel()` asks once, and a coroutine can swallow the request without meaning to: on Python 3.11,
`asyncio.wait_for` returns a result that arrives together with the cancellation and drops the cancellation (CPython
gh-86296, fixed in 3.12). A loop around such a call then goes on as if nothing was asked, and whoever awaits the task
waits forever: the query API's alias refresher hung an app's shutdown that way in a test. Loops that are stopped this
way also check a flag of their own; `stop_task` is the net under every one of them: a task still running GRACE_S
after it was cancelled (its own cleanup included) is cancelled again, with a warning.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)
GRACE_S = 5.0


async def stop_task(task: asyncio.Future[Any], grace_s: float = GRACE_S) -> None:
    """Cancel `task` and wait until it has ended, cancelling it again each `grace_s` it runs on.

    Ending cancelled is what is asked; any other error the task ended with is raised.
    """
    task.cancel()
    while not (await asyncio.wait({task}, timeout=grace_s))[0]:
        log.warning("%r runs on %.1f s after it was cancelled: cancelling it again", task, grace_s)
        task.cancel()
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
