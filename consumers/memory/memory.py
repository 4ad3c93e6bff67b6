"""TiM's memory: recall before answering, post-think after, insert / forget / merge.

"Think-in-Memory: Recalling and Post-thinking Enable LLMs with Long-Term Memory" (Liu et al.,
arXiv 2311.08719):

- §3.2 recall: the question's embedding q [d] is hashed to a bucket, F(q) = argmax([qR; −qR]),
  and the top-k thoughts by cosine within the bucket(s) are recalled (:mod:`.lsh`; ``exact`` is
  the faiss baseline);
- §3.2 post-think: after a turn, a post-thinker (:mod:`.postthink`: spaCy offline, or an LLM)
  turns the query/response pair into head–relation–tail thoughts, which are inserted;
- §3.3 forget: an active thought that a newer one contradicts (:func:`.postthink.contradicts`) is
  retired (``status=retired``, ``retired_by`` the newer thought) and never recalled again;
- §3.3 merge: active thoughts sharing a head are rewritten into fewer. Offline, the rule here is
  the narrow one that needs no LLM: at least ``merge_min`` thoughts sharing head *and* relation
  become one thought whose tail lists theirs in time order ("Emily enjoys painting, piano and tea
  tasting"); the sources are kept, ``status=merged``. A merged thought stands for at most
  ``merge_max`` turns (so memory does not collapse into one blob per relation that every question
  recalls), and the post-thinker's fallback summaries (``said``, ``asked about``) are never merged:
  their tails are unrelated noun chunks.

Every operation is a store write in one run per observed session (``memory``), so a session's
thoughts, forgets and merges are undone together by ``mokg runs delete RUN``. The index mirrors
the store's active thoughts of each user and is rebuilt from the store when a user is first read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from consumers.memory.config import MemoryConfig
from consumers.memory.dialogue import Session
from consumers.memory.link import Linker
from consumers.memory.lsh import ExactIndex, LSHIndex, VectorIndex
from consumers.memory.postthink import PostThinker, contradicts
from consumers.memory.store import forget_user, read_thoughts, write_thoughts
from consumers.memory.thought import ACTIVE, MERGED, RETIRED, Thought
from graph.store import GraphStore
from loaders.features import TextEncoder


@dataclass
class Changes:
    """What one observed session did to the memory."""

    inserted: list[Thought] = field(default_factory=list)
    retired: list[Thought] = field(default_factory=list)
    merged: list[Thought] = field(default_factory=list)  # the sources, now status=merged
    restated: list[Thought] = field(default_factory=list)  # said again: provenance and time updated
    run_id: str = ""


def embed(encoder: TextEncoder, texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 ``[N, dim]`` (directly, no on-disk cache: see :mod:`.store`)."""
    if not texts:
        return np.zeros((0, encoder.dim), np.float32)
    vectors = np.asarray(encoder.encode(list(texts)), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: np.ndarray = vectors / np.where(norms > 0, norms, 1.0)
    return out


class TiMMemory:
    """The memory of every user in ``store``; ``linker`` adds ``MENTIONS`` to KG nodes."""

    def __init__(
        self,
        store: GraphStore,
        encoder: TextEncoder,
        thinker: PostThinker,
        config: MemoryConfig | None = None,
        linker: Linker | None = None,
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.thinker = thinker
        self.config = config or MemoryConfig()
        self.linker = linker
        self._active: dict[str, dict[str, Thought]] = {}
        self._index: dict[str, VectorIndex] = {}
        self._past: dict[str, dict[str, Thought]] = {}  # retired thoughts, with past_weight > 0
        self._past_index: dict[str, VectorIndex] = {}

    # --- reading -------------------------------------------------------------------------------
    def _load(self, user: str) -> None:
        if user in self._active:
            return
        stored = read_thoughts(self.store, user)
        keep = [i for i, t in enumerate(stored.thoughts) if t.status == ACTIVE]
        self._active[user] = {stored.thoughts[i].id: stored.thoughts[i] for i in keep}
        self._index[user] = self._new_index(len(keep))
        if keep:
            self._index[user].add([stored.thoughts[i].id for i in keep], stored.vectors[keep])
        if self.config.past_weight > 0:
            past = [i for i, t in enumerate(stored.thoughts) if t.status == RETIRED]
            self._past[user] = {stored.thoughts[i].id: stored.thoughts[i] for i in past}
            self._past_index[user] = ExactIndex(self.encoder.dim)
            if past:
                self._past_index[user].add([stored.thoughts[i].id for i in past], stored.vectors[past])

    def _new_index(self, size: int) -> VectorIndex:
        cfg = self.config
        if cfg.index == "exact":
            return ExactIndex(self.encoder.dim)
        buckets = cfg.buckets or default_buckets(size)
        return LSHIndex(self.encoder.dim, buckets=buckets, seed=cfg.seed, probes=cfg.probes)

    def thoughts(self, user: str) -> list[Thought]:
        """The active thoughts of ``user``, oldest first."""
        self._load(user)
        return sorted(self._active[user].values(), key=said_order)

    def recall(self, user: str, question: str, k: int = 10) -> list[tuple[Thought, float]]:
        """The top-``k`` active thoughts for ``question`` with their cosine (§3.2). With ``fill``,
        LSH probes further buckets until it has ``k`` (or every thought)."""
        self._load(user)
        if not self._active[user]:
            return []
        query = embed(self.encoder, [question])
        index = self._index[user]
        hits = index.search(query, k)[0]
        if self.config.fill and isinstance(index, LSHIndex):
            probes = index.probes
            while len(hits) < min(k, len(index)) and probes < index.buckets:
                probes += 1
                hits = index.search(query, k, probes=probes)[0]
        found = [(self._active[user][i], s) for i, s in hits if i in self._active[user]]
        if self.config.past_weight > 0 and self._past[user]:
            w = self.config.past_weight
            past = self._past_index[user].search(query, k)[0]
            found += [(self._past[user][i], w * s) for i, s in past if i in self._past[user]]
            found = sorted(found, key=lambda hit: -hit[1])[:k]
        return found

    # --- writing -------------------------------------------------------------------------------
    def observe(
        self, user: str, session: Session, turns: Sequence[int] | None = None, who: str = ""
    ) -> Changes:
        """Post-think ``turns`` of ``session`` (all by default) and organise the memory, in one
        run: insert, then forget what the new thoughts contradict, then merge. ``who`` is the
        user's name as the conversation uses it (the head of first-person thoughts)."""
        self._load(user)
        new: dict[str, Thought] = {}
        for index in range(len(session.turns)) if turns is None else turns:
            for t in self.thinker.think(user, session, index, who):
                new[t.id] = self._linked(t)
        active = self._active[user]
        changes = Changes(inserted=[t for i, t in new.items() if i not in active])
        changes.restated = [restated(active[i], t) for i, t in new.items() if i in active]
        changes.restated = [t for t in changes.restated if t != active[t.id]]
        if self.config.forget:
            changes.retired = self._contradicted(user, changes.inserted)
        with self.store.run_context("memory", note=f"post-think {session.id}") as run_id:
            changes.run_id = run_id
            self._insert(user, changes.inserted, run_id)
            if changes.restated:  # (the insert may have re-hashed the memory: read the dict again)
                write_thoughts(self.store, changes.restated, None, run_id=run_id)
                self._active[user].update((t.id, t) for t in changes.restated)
            self._retire(user, changes.retired, run_id)
            if self.config.merge:
                merged, sources = self._merge_groups(user)
                self._insert(user, merged, run_id)
                self._retire(user, sources, run_id)
                changes.inserted += merged
                changes.merged = sources
        return changes

    def _linked(self, thought: Thought) -> Thought:
        if self.linker is None:
            return thought
        return replace(
            thought, mentions=tuple(dict.fromkeys((*thought.mentions, *self.linker.link(thought))))
        )

    def _contradicted(self, user: str, inserted: Sequence[Thought]) -> list[Thought]:
        retired: dict[str, Thought] = {}
        for new in sorted(inserted, key=lambda t: t.at):
            for old in self._active[user].values():
                if old.id not in retired and old.at <= new.at and contradicts(old, new):
                    retired[old.id] = old.retire(new.at, new.id)
        return list(retired.values())

    def _merge_groups(self, user: str) -> tuple[list[Thought], list[Thought]]:
        groups: dict[tuple[str, str], list[Thought]] = {}
        for t in self.thoughts(user):
            if t.relation.lower() not in UNMERGED:
                groups.setdefault((t.head.lower(), t.relation.lower()), []).append(t)
        merged: list[Thought] = []
        sources: list[Thought] = []
        for members in groups.values():
            for chunk in _packed(members, self.config.merge_max):
                if len(chunk) < self.config.merge_min:
                    continue
                m = merge(chunk)
                merged.append(m)
                sources += [s.retire(m.at, m.id, MERGED) for s in chunk if s.id != m.id]
        return merged, sources

    def _insert(self, user: str, thoughts: Sequence[Thought], run_id: str) -> None:
        if not thoughts:
            return
        vectors = embed(self.encoder, [t.text for t in thoughts])
        write_thoughts(self.store, thoughts, vectors, run_id=run_id)
        for t in thoughts:
            self._active[user][t.id] = t
        index = self._index[user]
        index.add([t.id for t in thoughts], vectors)
        if (
            isinstance(index, LSHIndex)
            and not self.config.buckets
            and default_buckets(len(index)) >= 2 * index.buckets
        ):
            del self._active[user]  # the memory outgrew its buckets: re-hash it from the store
            self._load(user)

    def _retire(self, user: str, thoughts: Sequence[Thought], run_id: str) -> None:
        if not thoughts:
            return
        write_thoughts(self.store, thoughts, None, run_id=run_id)
        for t in thoughts:
            self._active[user].pop(t.id, None)
        self._index[user].remove([t.id for t in thoughts])
        retired = [t for t in thoughts if t.status == RETIRED]
        if self.config.past_weight > 0 and retired:
            self._past[user].update((t.id, t) for t in retired)
            self._past_index[user].add(
                [t.id for t in retired], embed(self.encoder, [t.text for t in retired])
            )

    def forget_user(self, user: str) -> int:
        """Delete ``user``'s memory from the store and from the index (right to be forgotten)."""
        removed = forget_user(self.store, user)
        index = self._index.pop(user, None)
        if index is not None:
            index.remove(list(self._active.pop(user, {})))
        past = self._past_index.pop(user, None)
        if past is not None:
            past.remove(list(self._past.pop(user, {})))
        return removed


UNMERGED = frozenset({"said", "asked about"})  # the post-thinker's fallback summaries


def _packed(members: Sequence[Thought], max_turns: int) -> list[list[Thought]]:
    """``members`` (oldest first) in consecutive chunks of at most ``max_turns`` turns."""
    chunks: list[list[Thought]] = [[]]
    used = 0
    for t in members:
        if chunks[-1] and used + len(t.turns) > max_turns:
            chunks.append([])
            used = 0
        chunks[-1].append(t)
        used += len(t.turns)
    return chunks


def restated(old: Thought, again: Thought) -> Thought:
    """``old`` said again in ``again``'s turn: the turns united, the newer time (a thought's id is
    its text, so saying it twice is one thought with two sources)."""
    turns, mentions = united([old, again])
    return replace(old, turns=turns, at=max(old.at, again.at), session=again.session, mentions=mentions)


def united(thoughts: Sequence[Thought]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The turns and the mentions of ``thoughts``, each once, in order."""
    turns = tuple(dict.fromkeys(turn for t in thoughts for turn in t.turns))
    return turns, tuple(dict.fromkeys(m for t in thoughts for m in t.mentions))


def said_order(t: Thought) -> tuple[str, str, int]:
    """When a thought was said: its time, then its first turn's session and position."""
    session, _, index = (t.turns[0] if t.turns else "#0").rpartition("#")
    return t.at, session, int(index) if index.isdigit() else 0


def merge(members: Sequence[Thought]) -> Thought:
    """One thought for thoughts sharing head and relation: tails listed in time order (deduplicated),
    provenance and mentions united, the newest time."""
    ordered = sorted(members, key=said_order)
    turns, mentions = united(ordered)
    tails = list(dict.fromkeys(t.tail.strip() for t in ordered if t.tail.strip()))
    tail = tails[0] if len(tails) == 1 else ", ".join(tails[:-1]) + " and " + tails[-1]
    last = ordered[-1]
    return Thought(
        user=last.user,
        head=last.head,
        relation=last.relation,
        tail=tail,
        session=last.session,
        at=last.at,
        turns=turns,
        mentions=mentions,
    )


def default_buckets(size: int) -> int:
    """LSH buckets for a memory of ``size`` thoughts: about 64 thoughts per bucket, at least 2."""
    return max(2, 2 * int(np.ceil(size / 128)))
