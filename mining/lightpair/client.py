"""``LightPAIRClient``: the distilled LightPAIR behind the ``LLMClient`` protocol (offline serving).

Usage::

    from mining.llm import make_client

    client = make_client("lightpair", model_path="mokg-data/lightpair/ckpt")
    # or: mokg build --llm lightpair --model mokg-data/lightpair/ckpt

It reads a PAIR prompt's facts block (``mining.prompts.read_facts``), the entity description and
the "Found in earlier rounds" line, runs the model, and answers with JSON text matching the task's
answer schema, so the mining job cannot tell it from an LLM:

- ``relation_filter``: the offered relations with p(r | h) ≥ τ (reason: the probability);
- ``entity_expansion``: the top-k tails of the closed set of the asked label with p ≥ τ_r, tails
  found in earlier rounds and the head itself excluded (progressive prompting);
- ``judge_triple``: valid = p ≥ 0.5, confidence = p or 1 − p (so the pipeline's belief is p);
- ``free_relations``: not modelled (LightPAIR is trained on the filtered pipeline): no triples.

Sampling (``sample=True``; off by default): at temperature 0 (or n = 1) the answer is greedy,
with the calibrated thresholds τ. At temperature > 0 each of the ``n`` samples includes every
offered relation / candidate tail r with probability p(r) (Bernoulli draws seeded by the
request's cache key), p being trained on the teacher's vote shares, so PAIR's self-consistency
vote over LightPAIR's samples estimates the teacher's. Judgements are always greedy (the
pipeline reads the mean belief, which is p either way).

The model loads on the first call; requests run in a worker thread, one batch at a time:
requests that arrive while the model is busy are answered together in the next batch (one
encoder pass per task).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from mining.llm.base import ClientBase, Completion, LLMError, Request, Usage


class LightPAIRClient(ClientBase):
    """Chat completions for PAIR prompts from a LightPAIR checkpoint.

    Args:
        model_path: a checkpoint directory written by ``mokg lightpair distill`` (or ``tune``).
        model: the model's name in cache keys and reports (default: derived from the checkpoint).
        threads: torch intra-op threads while answering.
        max_batch: at most this many waiting requests answered in one pass.
        sample: draw the ``n`` samples of a request at temperature > 0 (default off: the greedy
            answer repeated scored better on held-out seeds, see docs/lightpair.md).
        seed: base seed of the per-request sampling seeds.
        precision: the encoder's precision, ``fp32`` or ``bf16`` (faster on CPUs with BF16
            instructions; answers may differ in near ties, so the model name, and with it the
            cache key, says bf16).
    """

    name = "lightpair"

    def __init__(
        self,
        model_path: str | Path,
        model: str | None = None,
        *,
        threads: int = 1,
        max_batch: int = 64,
        sample: bool = False,
        seed: int = 0,
        precision: str = "fp32",
    ) -> None:
        self.model_path = Path(model_path)
        if precision not in ("fp32", "bf16"):
            raise LLMError(f"LightPAIR precision must be fp32 or bf16, not {precision!r}")
        self.precision = precision
        meta = self.model_path / "lightpair.json"
        if not meta.exists():
            raise LLMError(
                f"No LightPAIR checkpoint at {self.model_path}: make one with "
                "`mokg lightpair distill --workdir BUILD_DIR --out DIR`."
            )
        self.model = model or f"lightpair-{hashlib.sha256(meta.read_bytes()).hexdigest()[:12]}"
        if precision != "fp32" and model is None:
            self.model += f"-{precision}"
        self.threads, self.max_batch, self.sample, self.seed = threads, max_batch, sample, seed
        self._usage = Usage()
        self._engine: Any = None
        self._queue: list[tuple[Request, asyncio.Future[Completion]]] = []
        self._worker: asyncio.Task[None] | None = None

    @property
    def usage(self) -> Usage:
        return self._usage

    async def agenerate(self, request: Request) -> Completion:
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            started = time.perf_counter()
            try:
                texts = await asyncio.to_thread(self._answer_batch, [r for r, _ in batch])
            except Exception as exc:  # every waiting request learns of the failure
                self._usage.failures += len(batch)
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self._usage.seconds += time.perf_counter() - started
            for (request, future), answers in zip(batch, texts, strict=True):
                self._usage.calls += 1
                prompt = sum(len(m["content"].split()) for m in request.messages)
                completion = sum(len(a.split()) for a in answers)
                self._usage.prompt_tokens += prompt
                self._usage.completion_tokens += completion
                future.set_result(Completion(answers, prompt, completion))

    def _seed(self, request: Request) -> int | None:
        """None (greedy) at temperature 0 or n = 1; else a seed from the request's cache key."""
        if request.temperature <= 0 or request.n <= 1 or not self.sample:
            return None
        from mining.llm.cache import cache_key

        return (int(cache_key(self.model, request)[:12], 16) + self.seed) % 2**31

    def _answer_batch(self, requests: list[Request]) -> list[list[str]]:
        import torch

        from mining.lightpair.serve import Engine

        with torch.inference_mode():
            previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                if self._engine is None:
                    self._engine = Engine.load(self.model_path, self.precision)
                answers = self._engine.answer(
                    [r.messages for r in requests], [r.n for r in requests], [self._seed(r) for r in requests]
                )
                return [[json.dumps(a) for a in sample] for sample in answers]
            finally:
                torch.set_num_threads(previous)
