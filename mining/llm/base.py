"""The one extension point for LLM backends: the ``LLMClient`` protocol, its request and usage types.

A backend answers a :class:`Request` (chat messages plus sampling parameters) with a
:class:`Completion` (``n`` response strings and the tokens they cost). :class:`ClientBase` turns
that one coroutine, ``agenerate``, into the sync and async entry points every caller uses, so a new
backend is one class with one method, registered in ``mining.llm.LLM_CLIENTS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from graph.errors import MokgError
from mining.prompts import Message

T = TypeVar("T")


class LLMError(MokgError):
    """An LLM call that failed for a reason retrying will not fix (bad request, unknown prompt)."""


class LLMUnavailable(LLMError):
    """An LLM endpoint that still does not answer after every retry."""

    exit_code = 3


@dataclass(frozen=True)
class Request:
    """The arguments of one ``complete()`` call.

    Args:
        messages: chat messages (``{"role": ..., "content": ...}``).
        n: number of samples wanted.
        temperature: sampling temperature.
        max_tokens: cap on completion tokens per sample.
        response_schema: JSON schema the answer must match (sent as ``response_format``).
        extra: a salt for the cache key only (never sent), so a re-ask is not served the cached answer.
    """

    messages: Sequence[Message]
    n: int = 1
    temperature: float = 0.0
    max_tokens: int = 512
    response_schema: dict[str, Any] | None = None
    extra: str = ""


@dataclass(frozen=True)
class Completion:
    """The ``n`` response strings of one request and the tokens they cost (0 when served from cache)."""

    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Usage:
    """Token and call accounting for a run (``report()`` is printed at the end of a job).

    ``calls`` counts requests a backend answered, ``cache_hits`` requests the cache answered,
    ``retries`` re-sent attempts, ``failures`` requests given up on, and ``seconds`` the summed time
    spent waiting on the backend.
    """

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    failures: int = 0
    seconds: float = 0.0

    def cost(self, price_per_1k_prompt: float, price_per_1k_completion: float) -> float:
        """The money spent at the given prices per 1000 tokens."""
        return (
            self.prompt_tokens * price_per_1k_prompt + self.completion_tokens * price_per_1k_completion
        ) / 1000

    def merge(self, other: Usage) -> Usage:
        """A new ``Usage`` with every counter summed."""
        return Usage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def report(self, price_per_1k_prompt: float = 0.0, price_per_1k_completion: float = 0.0) -> str:
        """One line for people: calls, cache hits, tokens, retries, failures, time (and cost if priced)."""
        text = (
            f"LLM usage: {self.calls} calls, {self.cache_hits} cache hits, "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens, "
            f"{self.retries} retries, {self.failures} failures, {self.seconds:.1f} s waiting"
        )
        if price_per_1k_prompt or price_per_1k_completion:
            text += f", cost {self.cost(price_per_1k_prompt, price_per_1k_completion):.4f}"
        return text


@runtime_checkable
class LLMClient(Protocol):
    """What every LLM backend offers: chat completion, sync and async, with usage accounting."""

    name: str
    model: str

    @property
    def usage(self) -> Usage: ...

    def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 512,
        response_schema: dict[str, Any] | None = None,
        extra: str = "",
    ) -> list[str]: ...

    async def acomplete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 512,
        response_schema: dict[str, Any] | None = None,
        extra: str = "",
    ) -> list[str]: ...

    async def agenerate(self, request: Request) -> Completion:
        """One request with its token counts (what the cache stores and accounting adds up)."""
        ...

    async def aclose(self) -> None:
        """Release connections bound to the running event loop."""
        ...


class ClientBase:
    """Sync/async/batch entry points on top of one ``agenerate`` coroutine (subclasses implement it).

    The sync methods run their own event loop and release its connections afterwards. Async callers
    own the lifetime: ``async with client:`` (or ``await client.aclose()``) in the loop that used it.
    A client is not thread-safe; give each thread its own.
    """

    name: str = "base"
    model: str = ""

    async def agenerate(self, request: Request) -> Completion:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Nothing to release by default."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 512,
        response_schema: dict[str, Any] | None = None,
        extra: str = "",
    ) -> list[str]:
        """``n`` responses to ``messages`` (runs the async path; not callable inside a running loop)."""
        request = Request(messages, n, temperature, max_tokens, response_schema, extra)
        return self._run(self.agenerate(request)).texts

    async def acomplete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 512,
        response_schema: dict[str, Any] | None = None,
        extra: str = "",
    ) -> list[str]:
        """``n`` responses to ``messages``."""
        request = Request(messages, n, temperature, max_tokens, response_schema, extra)
        return (await self.agenerate(request)).texts

    async def acomplete_many(self, requests: Sequence[Request]) -> list[list[str]]:
        """The responses to every request, run concurrently (bounded by the backend), in order."""
        done = await asyncio.gather(*(self.agenerate(r) for r in requests))
        return [c.texts for c in done]

    def complete_many(self, requests: Sequence[Request]) -> list[list[str]]:
        """Sync form of :meth:`acomplete_many`."""
        return self._run(self.acomplete_many(requests))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._then_close(coro))
        coro.close()
        raise LLMError(
            f"{type(self).__name__}.complete() was called inside a running event loop; "
            "await acomplete() / acomplete_many() there instead."
        )

    async def _then_close(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return await coro
        finally:
            await self.aclose()
