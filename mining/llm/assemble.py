"""The client chain of a build, assembled in one place: backend → response cache.

``mokg build``, ``mokg demo`` and tests describe the LLM they want with an :class:`LLMSpec`;
:func:`open_client` starts what it needs for the block (the world's teacher server for
``teacher``) and yields the backend behind the content-addressed response cache (``replay``
reads recorded answers and needs no cache in front).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.errors import InputError
from mining.llm.base import LLMClient

CHOICES = ("teacher", "openai", "local", "replay", "lightpair")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class LLMSpec:
    """Which LLM answers a build, and how it is called.

    Args:
        choice: teacher (the world's simulated LLM, started here), openai (any compatible
            endpoint), local (a transformers model or GGUF), lightpair (a distilled checkpoint) or
            replay (recorded answers, offline).
        noise, seed: the teacher's noise level and seed (``seed`` also seeds openai/local sampling).
        base_url, model: the endpoint and model name (openai), a path (local, lightpair), or the
            recorded model (replay; default: the teacher at ``noise``).
        concurrency, timeout_s, max_retries: request limits.
        schema_format: openai: ``json_schema`` or ``json_object`` (llama.cpp).
        precision: lightpair: fp32 or bf16.
        latency_s: teacher: simulated seconds per answer.
        world: teacher: the world directory (default: the shipped ontology).
        cache: the response cache directory (default ``$MOKG_CACHE/llm``).
    """

    choice: str = "teacher"
    noise: str = "medium"
    seed: int = 0
    base_url: str | None = None
    model: str | None = None
    concurrency: int = 16
    timeout_s: float = 30.0
    max_retries: int = 4
    schema_format: str = "json_schema"
    precision: str = "fp32"
    latency_s: float = 0.0
    world: Path | None = None
    cache: Path | None = None

    def identity(self) -> str:
        """What makes two builds' answers differ (part of the job key)."""
        ident = f"{self.choice}:{self.model or ''}:{self.base_url or ''}:"
        ident += self.noise if self.choice == "teacher" else ""
        if self.choice == "lightpair" and self.precision != "fp32":  # fp32 keeps earlier jobs' keys
            ident += f":{self.precision}"
        return ident

    def check(self) -> None:
        """Refuse a spec that cannot work, before anything starts."""
        if self.choice not in CHOICES:
            raise InputError(f"--llm must be one of {', '.join(CHOICES)}, not {self.choice!r}")
        if self.precision not in PRECISIONS:
            raise InputError(f"--precision must be fp32 or bf16, not {self.precision!r}")
        if self.choice == "openai" and (not self.base_url or not self.model):
            raise InputError("--llm openai needs --base-url (e.g. http://127.0.0.1:8000/v1) and --model")
        if self.choice == "lightpair" and not self.model:
            raise InputError("--llm lightpair needs --model DIR (a checkpoint of `mokg lightpair distill`)")
        if self.choice == "local" and not self.model:
            raise InputError("--llm local needs --model PATH (a model directory or a .gguf file)")


@contextlib.contextmanager
def open_client(spec: LLMSpec) -> Iterator[LLMClient]:
    """The spec's client behind the response cache, for the duration of the block."""
    from mining.llm import make_client
    from mining.llm.cache import ResponseCache, default_cache_dir
    from mining.llm.cached import CachedClient

    spec.check()
    limits: dict[str, Any] = {
        "concurrency": spec.concurrency,
        "timeout_s": spec.timeout_s,
        "max_retries": spec.max_retries,
    }
    cache = ResponseCache(spec.cache) if spec.cache else ResponseCache()
    if spec.choice == "teacher":
        from mining.teacher import TeacherServer, noise_level

        noise = noise_level(spec.noise, spec.seed)
        with TeacherServer(spec.world, port=0, noise=noise, latency_s=spec.latency_s) as server:
            inner = make_client("openai", base_url=server.base_url, model=server.model, **limits)
            yield CachedClient(inner, cache)
        return
    if spec.choice == "replay":
        from mining.teacher import noise_level

        recorded = spec.model or noise_level(spec.noise, spec.seed).model_id()
        yield make_client("replay", path_or_dir=spec.cache or default_cache_dir(), model=recorded)
        return
    if spec.choice == "openai":
        limits["schema_format"] = spec.schema_format
        inner = make_client("openai", base_url=spec.base_url, model=spec.model, seed=spec.seed, **limits)
    elif spec.choice == "lightpair":
        inner = make_client("lightpair", model_path=spec.model, precision=spec.precision)
    else:
        inner = make_client("local", model_path=spec.model, seed=spec.seed)
    yield CachedClient(inner, cache)
