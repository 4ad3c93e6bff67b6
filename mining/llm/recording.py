"""``RecordingClient``: any ``LLMClient`` whose requests and answers are appended to a JSON-lines
transcript, the record of what a mining run asked and what the model said (LightPAIR's
distillation corpus is built from it).

Each line: ``{"task", "prompt_id", "model", "messages", "n", "temperature", "responses"}``, where
``task`` is the PAIR task named in the prompt's facts block (empty for other prompts) and
``prompt_id`` the content hash of the messages (the id the written edges cite).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from mining.llm.base import ClientBase, Completion, LLMClient, Request, Usage
from mining.prompts import read_facts


def prompt_id(messages: list[dict[str, str]]) -> str:
    """A short content hash of a prompt (the provenance id on written edges)."""
    text = json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RecordingClient(ClientBase):
    """``inner`` with every answered request appended to ``path`` (one line per request)."""

    def __init__(self, inner: LLMClient, path: Path) -> None:
        self.inner, self.path = inner, path
        self.name, self.model = f"recorded:{inner.name}", inner.model
        self._lock = asyncio.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    async def agenerate(self, request: Request) -> Completion:
        completion = await self.inner.agenerate(request)
        messages = [dict(m) for m in request.messages]
        row = {
            "task": read_facts(messages).get("Task", ""),
            "prompt_id": prompt_id(messages),
            "model": self.model,
            "messages": messages,
            "n": request.n,
            "temperature": request.temperature,
            "responses": completion.texts,
        }
        async with self._lock:
            with self.path.open("a") as out:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return completion

    async def aclose(self) -> None:
        await self.inner.aclose()
