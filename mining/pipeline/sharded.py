"""``mokg build --cluster``: the mining build with its LLM requests answered in shards on Dask workers.

PAIR (Gan et al., "Making Large Language Models Better Knowledge Miners for Online Marketing with
Progressive Prompting Augmentation", arXiv 2312.05276) mines in rounds, and the rounds couple the
seeds: round r + 1's heads are the tails accepted in round r across *all* heads (deduplicated against
every head visited, capped at ``max_new_heads`` by score), and a progressive prompt lists what was
accepted for its pair so far. Seeds mined as independent jobs would therefore end with another graph
(a tail reached from two seeds mined twice, at different rounds, the cap applied per shard).

So the job stays one job, in the driver, round by round, and what is sharded is the work inside a
round's stages, which is independent per head: every stage (relation filter, expansion, judgement)
issues its requests at once (``asyncio.gather``); :class:`ShardedClient` collects the requests of a
stage (those issued within ``window_s`` of each other), cuts them into one contiguous shard per worker
(contiguous runs of heads: round 1's heads are the seed intents in order) and has each worker answer
its shard concurrently through the same response cache (``LLMSpec.cache``, a shared directory). The
driver keeps everything that is not per head and must not depend on the sharding: parsing, entity
resolution and MiniLM scores (embedding batches would otherwise differ by shard), the frontier, the
checkpoint and the one writer of the embedded store (one write per round, as without a cluster).

Hence the sharded build asks the same prompts and gets the same answers as the single-process one,
so it ends with the same graph (``tests/test_cluster.py``). A shard that fails is retried by Dask
(``retries``): requests it had answered are cache hits, the rest are asked again, and nothing is
written until the round's answers are all in, so a retry is safe. A shard that still fails fails the
round; the checkpoint of the last finished round lets a rerun resume.

Each worker opens the LLM once (a teacher server, a local model, an HTTP client) and keeps it until
the build ends; ``LLMSpec.concurrency`` applies per worker, so an HTTP endpoint sees up to
workers × concurrency requests at once.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from mining.llm.assemble import LLMSpec, open_client
from mining.llm.base import ClientBase, Completion, LLMClient, Request, Usage
from mining.pipeline.build import BuildRequest, BuildResult, Log, run_build
from mining.pipeline.job import StageProgress

if TYPE_CHECKING:
    from distributed import Client, Future

    from graph.store import GraphStore

Shard = Callable[[LLMSpec, list[Request]], tuple[list[Completion], Usage]]

# ---- on a worker ------------------------------------------------------------------------------

_OPEN: dict[tuple[LLMSpec, int], tuple[contextlib.ExitStack, LLMClient]] = {}


def close_worker_clients() -> None:
    """Close every client this worker opened (and the teacher servers they started)."""
    for stack, _ in _OPEN.values():
        stack.close()
    _OPEN.clear()


def worker_client(spec: LLMSpec) -> LLMClient:
    """This worker thread's client for ``spec`` (backend behind the response cache), opened once and
    kept for the worker's life (a teacher server or a local model starts once per worker)."""
    key = (spec, threading.get_ident())
    if key not in _OPEN:
        atexit.unregister(close_worker_clients)  # registered once, however many clients
        atexit.register(close_worker_clients)
        stack = contextlib.ExitStack()
        _OPEN[key] = (stack, stack.enter_context(open_client(spec)))
    return _OPEN[key][1]


def _minus(after: Usage, before: Usage) -> Usage:
    return Usage(**{f.name: getattr(after, f.name) - getattr(before, f.name) for f in fields(Usage)})


def answer_shard(spec: LLMSpec, requests: list[Request]) -> tuple[list[Completion], Usage]:
    """The answers to ``requests`` (asked concurrently, through the cache) and what they cost."""
    client = worker_client(spec)
    before = Usage().merge(client.usage)

    async def ask() -> list[Completion]:
        try:
            return list(await asyncio.gather(*(client.agenerate(r) for r in requests)))
        finally:
            await client.aclose()

    answers = asyncio.run(ask())
    return answers, _minus(Usage().merge(client.usage), before)


def model_of(spec: LLMSpec) -> str:
    """The model name ``spec``'s backend reports (the transcript records it)."""
    return worker_client(spec).model


# ---- in the driver ----------------------------------------------------------------------------


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    """``items`` in ``parts`` contiguous runs of near-equal length (empty runs dropped)."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for k in range(parts):
        end = start + size + (k < extra)
        out.append(items[start:end])
        start = end
    return [run for run in out if run]


class ShardedClient(ClientBase):
    """An :class:`LLMClient` whose requests are answered in shards on a Dask cluster.

    Args:
        dask: a connected ``distributed.Client``.
        spec: the LLM each worker opens (its ``cache`` must be a directory every worker sees).
        shards: shards per stage (default: one per worker).
        retries: times Dask reruns a failed shard.
        window_s: requests issued within this many seconds of the first one form one stage's batch.
        shard: the function a worker runs on a shard (:func:`answer_shard`).
    """

    def __init__(
        self,
        dask: Client,
        spec: LLMSpec,
        *,
        shards: int | None = None,
        retries: int = 1,
        window_s: float = 0.05,
        shard: Shard = answer_shard,
    ) -> None:
        from graph.cluster import worker_count

        self.dask, self.spec, self.retries, self.window_s, self.shard = dask, spec, retries, window_s, shard
        self.shards = shards or worker_count(dask)
        self.model = dask.submit(model_of, spec, pure=False).result()
        self.name = f"sharded:{spec.choice}"
        self.batches = 0
        self._usage = Usage()
        self._queue: list[tuple[Request, asyncio.Future[Completion]]] = []
        self._collecting: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()  # references, so no batch is collected early

    @property
    def usage(self) -> Usage:
        return self._usage

    async def agenerate(self, request: Request) -> Completion:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Completion] = loop.create_future()
        self._queue.append((request, waiter))
        if self._collecting is None:
            self._collecting = loop.create_task(self._dispatch())
            self._batches.add(self._collecting)
            self._collecting.add_done_callback(self._batches.discard)
        return await waiter

    async def _dispatch(self) -> None:
        await asyncio.sleep(self.window_s)
        batch, self._queue, self._collecting = self._queue, [], None  # later requests: a new batch
        self.batches += 1
        runs = _split(batch, self.shards)
        futures = [
            self.dask.submit(self.shard, self.spec, [r for r, _ in run], retries=self.retries, pure=False)
            for run in runs
        ]
        await asyncio.gather(*(self._settle(f, run) for f, run in zip(futures, runs, strict=True)))

    async def _settle(
        self, future: Future[Any], run: list[tuple[Request, asyncio.Future[Completion]]]
    ) -> None:
        try:
            answers, usage = await asyncio.to_thread(future.result)
        except Exception as exc:  # the shard failed after its retries: every request in it fails
            for _, waiter in run:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        self._usage = self._usage.merge(usage)
        for (_, waiter), answer in zip(run, answers, strict=True):
            if not waiter.done():
                waiter.set_result(answer)


def run_sharded_build(
    store: GraphStore,
    request: BuildRequest,
    cluster: str | Client,
    *,
    progress: StageProgress | None = None,
    log: Log | None = None,
    shard: Shard = answer_shard,
) -> BuildResult:
    """:func:`~mining.pipeline.build.run_build` with the LLM requests answered on ``cluster``
    (``local:N``, ``tcp://HOST:PORT`` or a connected client, :mod:`graph.cluster`); same job key,
    checkpoint and graph. ``shard``: what a worker runs on a shard (tests inject failures here)."""
    from graph.cluster import open_cluster

    say = log or (lambda _line: None)
    request.llm.check()
    with open_cluster(cluster) as dask:
        client = ShardedClient(dask, request.llm, shard=shard)
        where = dask.scheduler_info()["address"]
        say(f"answering LLM requests in {client.shards} shards per stage on {where}")
        try:
            return run_build(store, request, client=client, progress=progress, log=log)
        finally:
            dask.run(close_worker_clients)  # a worker keeps its clients (and teacher) between builds
