"""Run a coroutine to completion from synchronous code, also where an event loop already runs.

The mining jobs are asyncio programs behind synchronous entry points (``run_build``, ``run_job``).
``asyncio.run`` refuses to start inside a running loop, which is where a Jupyter kernel calls them;
there the coroutine runs on a fresh loop in one worker thread and the caller waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``; inside a running loop, the same on a new loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="mokg-aio") as pool:
        return pool.submit(asyncio.run, coro).result()
