"""LLM backends behind one ``LLMClient`` protocol, registered by name (``make_client``).

Importing this package loads no backend: each factory imports its module when called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mining.llm.base import ClientBase, Completion, LLMClient, LLMError, LLMUnavailable, Request, Usage


def _openai(**kwargs: Any) -> LLMClient:
    from mining.llm.openai_http import OpenAIClient

    return OpenAIClient(**kwargs)


def _local(**kwargs: Any) -> LLMClient:
    from mining.llm.local import LocalClient

    return LocalClient(**kwargs)


def _lightpair(**kwargs: Any) -> LLMClient:
    from mining.lightpair.client import LightPAIRClient

    return LightPAIRClient(**kwargs)


def _replay(**kwargs: Any) -> LLMClient:
    from mining.llm.replay import ReplayClient

    return ReplayClient(**kwargs)


LLM_CLIENTS: dict[str, Callable[..., LLMClient]] = {
    "openai": _openai,
    "replay": _replay,
    "local": _local,
    "lightpair": _lightpair,  # the distilled LightPAIR model (mining/lightpair), offline
}


def make_client(name: str, **kwargs: Any) -> LLMClient:
    """The client registered as ``name``, built with ``kwargs``."""
    try:
        factory = LLM_CLIENTS[name]
    except KeyError:
        known = ", ".join(sorted(LLM_CLIENTS))
        raise LLMError(f"Unknown LLM client {name!r}; choose one of: {known}.") from None
    return factory(**kwargs)


__all__ = [
    "LLM_CLIENTS",
    "ClientBase",
    "Completion",
    "LLMClient",
    "LLMError",
    "LLMUnavailable",
    "Request",
    "Usage",
    "make_client",
]
