"""``ReplayClient``: answers only from recorded responses, so offline reruns are exact.

Recordings are either a ``ResponseCache`` directory (what a live run with ``CachedClient`` leaves
behind) or a JSONL file of ``{"key": ..., "responses": [...]}`` lines (see :func:`write_jsonl`).
Keys are computed exactly as the cache computes them, so the model name must be the recorded one.
"""

from __future__ import annotations

import json
from pathlib import Path

from mining.llm.base import ClientBase, Completion, LLMError, Request, Usage
from mining.llm.cache import ResponseCache, cache_key


class ReplayClient(ClientBase):
    """Recorded answers for ``model`` from ``path_or_dir``; an unrecorded prompt raises ``LLMError``."""

    name = "replay"

    def __init__(self, path_or_dir: str | Path, model: str) -> None:
        self.path = Path(path_or_dir)
        self.model = model
        self._usage = Usage()
        self._records: dict[str, Completion] | None = None
        if not self.path.exists():
            raise LLMError(f"No recorded LLM responses at {self.path}: give a cache directory or a JSONL.")

    @property
    def usage(self) -> Usage:
        return self._usage

    async def agenerate(self, request: Request) -> Completion:
        key = cache_key(self.model, request)
        found = self._lookup(key)
        if found is None:
            self._usage.failures += 1
            raise LLMError(
                f"No recorded response for key {key} (model {self.model!r}, n={request.n}, "
                f"temperature={request.temperature}) in {self.path}. Rerun with a live client and the "
                "cache to record it, or check that model, prompts and parameters match the recording."
            )
        self._usage.calls += 1
        self._usage.prompt_tokens += found.prompt_tokens
        self._usage.completion_tokens += found.completion_tokens
        return found

    def _lookup(self, key: str) -> Completion | None:
        if self.path.is_dir():
            return ResponseCache(self.path).get(key)
        if self._records is None:
            self._records = read_jsonl(self.path)
        return self._records.get(key)


def read_jsonl(path: Path) -> dict[str, Completion]:
    """``{key: completion}`` from a JSONL recording."""
    records: dict[str, Completion] = {}
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                usage = row.get("usage", {})
                records[row["key"]] = Completion(
                    [str(t) for t in row["responses"]],
                    int(usage.get("prompt_tokens", 0)),
                    int(usage.get("completion_tokens", 0)),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise LLMError(f"{path}:{number} is not a recording line ({exc}).") from None
    return records


def write_jsonl(cache: ResponseCache, path: str | Path) -> int:
    """Write every entry of ``cache`` as a JSONL recording; returns the number written."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for key in sorted(cache.keys()):
            entry = cache.get(key)
            if entry is not None:
                usage = {"prompt_tokens": entry.prompt_tokens, "completion_tokens": entry.completion_tokens}
                row = {"key": key, "responses": entry.texts, "usage": usage}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    return count
