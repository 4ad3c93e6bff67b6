"""``CachedClient``: any ``LLMClient`` behind the on-disk response cache.

A request whose key (model, messages, n, sampling parameters, schema, extra) is on disk is answered
from there and costs no call; a miss goes to the inner client and is stored. All ``n`` samples of a
request are one entry, so a rerun with the same parameters gets the same samples back.
"""

from __future__ import annotations

from mining.llm.base import ClientBase, Completion, LLMClient, Request, Usage
from mining.llm.cache import ResponseCache, cache_key, request_record


class CachedClient(ClientBase):
    """``inner`` with every call going through ``cache``; ``usage`` adds cache hits to inner's counts."""

    def __init__(self, inner: LLMClient, cache: ResponseCache | None = None) -> None:
        self.inner = inner
        self.cache = cache if cache is not None else ResponseCache()
        self.name = f"cached:{inner.name}"
        self.model = inner.model
        self._hits = Usage()

    @property
    def usage(self) -> Usage:
        return self.inner.usage.merge(self._hits)

    async def agenerate(self, request: Request) -> Completion:
        key = cache_key(self.model, request)
        hit = self.cache.get(key)
        if hit is not None and len(hit.texts) == request.n:
            self._hits.cache_hits += 1
            return hit
        completion = await self.inner.agenerate(request)
        self.cache.put(key, completion, request_record(self.model, request))
        return completion

    async def aclose(self) -> None:
        await self.inner.aclose()
