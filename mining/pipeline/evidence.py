"""Behavioural evidence for knowledge-empowered prompts: what users did around an intent's searches.

PAIR's prompts carry domain knowledge (arXiv 2312.05276, PAPERS.md §1). Besides the graph's known
neighbours (:mod:`mining.pipeline.context`), a marketing platform knows what its users did: the
store's visible tables hold searches (``User -SEARCHED-> Query``, with the query text and time) and
interactions (``User -INTERACTED-> Item -BELONGS_TO-> Category``). Nothing here reads hidden truth.

An intent's *sessions* are the users whose searches mention the intent's name (case-insensitive
substring of the query text), anchored at their first such search. From them:

- engaged categories (Intent → Category, evidence for NEEDS): the leaf categories of the items a
  session's user interacted with from ``before_days`` before to ``after_days`` after the anchor;
  share = sessions engaging the category / the intent's sessions;
- searched by intents (Category → Intent, evidence for SERVES): the same pairs seen from the
  category; share = the intent-side share above;
- co-searched intents (Intent → Intent, CO_OCCURS_WITH): users with sessions of both; share =
  shared users / the head intent's sessions;
- searched next (Intent → Intent, PRECEDES): users whose session of the tail intent started after
  their session of the head; share = those users / the head intent's sessions.

Each list keeps the ``top`` entries by count (ties by name) with at least ``min_count`` sessions.
The evidence is computed once per mining job and kept in its checkpoint, so a resumed job prompts
exactly as before. It is opt-in (``MiningConfig.evidence``): prompts change with it, and so does
every answer of a prompt-seeded teacher.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from graph.store import GraphStore

# kind of evidence -> the mined relation it speaks for (the prompt shows the kind, LightPAIR maps it)
KINDS: dict[str, str] = {
    "engaged categories": "NEEDS",
    "searched by intents": "SERVES",
    "co-searched intents": "CO_OCCURS_WITH",
    "searched next": "PRECEDES",
}

Item = tuple[str, str, float, int]  # (kind, tail name, share, count)


@dataclass(frozen=True)
class EvidenceConfig:
    """The session window (days around the anchor search) and the list lengths."""

    before_days: float = 1.0
    after_days: float = 14.0
    top: int = 12
    min_count: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BehaviourEvidence:
    """Evidence items per entity ((label, id) → items, best first)."""

    def __init__(self, items: dict[tuple[str, str], list[Item]] | None = None) -> None:
        self.items: dict[tuple[str, str], list[Item]] = items or {}

    def of(self, ref: tuple[str, str]) -> tuple[Item, ...]:
        return tuple(self.items.get(ref, ()))

    def to_json(self) -> dict[str, list[list[Any]]]:
        return {f"{t}\x1f{i}": [list(x) for x in items] for (t, i), items in self.items.items()}

    @classmethod
    def from_json(cls, data: dict[str, list[list[Any]]]) -> BehaviourEvidence:
        out: dict[tuple[str, str], list[Item]] = {}
        for ref, items in data.items():
            label, _, node_id = ref.partition("\x1f")
            out[label, node_id] = [(str(k), str(n), float(s), int(c)) for k, n, s, c in items]
        return cls(out)

    @classmethod
    def from_store(cls, store: GraphStore, config: EvidenceConfig | None = None) -> BehaviourEvidence:
        """Compute the evidence from the store's visible searches and interactions."""
        cfg = config or EvidenceConfig()
        intents = store.node_table("Intent", ["name"])
        cats = store.node_table("Category", ["name"])
        sessions = _sessions(store, intents)
        if sessions.empty:
            return cls()
        iname = dict(zip(intents["id"], intents["name"], strict=True))
        cname = dict(zip(cats["id"], cats["name"], strict=True))
        n_sessions = sessions.groupby("intent").size()
        engaged = _engaged(store, sessions, cfg)
        out: dict[tuple[str, str], list[Item]] = defaultdict(list)
        for kind, pairs, head_label, names in (
            ("engaged categories", engaged, "Intent", cname),
            ("co-searched intents", _co(sessions, later=False), "Intent", iname),
            ("searched next", _co(sessions, later=True), "Intent", iname),
        ):
            for head, rows in pairs.groupby("head", sort=True):
                share = rows["count"] / n_sessions[head]
                out[head_label, str(head)] += _top(kind, rows["tail"], rows["count"], share, names, cfg)
        by_cat = engaged.assign(share=engaged["count"] / engaged["head"].map(n_sessions).to_numpy())
        for cat, rows in by_cat.groupby("tail", sort=True):
            out["Category", str(cat)] += _top(
                "searched by intents", rows["head"], rows["count"], rows["share"], iname, cfg
            )
        return cls(dict(out))


def _sessions(store: GraphStore, intents: pd.DataFrame) -> pd.DataFrame:
    """(intent, user, ts): each user's first search mentioning the intent's name."""
    queries = store.node_table("Query", ["text"])
    searched = store.edge_table(("User", "SEARCHED", "Query"), ["ts"])
    if queries.empty or searched.empty:
        return pd.DataFrame(columns=["intent", "user", "ts"])
    text = queries["text"].fillna("").str.lower()
    parts = []
    for intent, name in zip(intents["id"], intents["name"].fillna("").str.lower(), strict=True):
        if name:
            hit = queries["id"][text.str.contains(name, regex=False)]
            parts.append(pd.DataFrame({"intent": intent, "query": hit.to_numpy()}))
    matches = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["intent", "query"])
    found = searched.merge(matches, left_on="tail", right_on="query")[["intent", "head", "ts"]]
    found = found.rename(columns={"head": "user"}).sort_values(["intent", "user", "ts"])
    return found.drop_duplicates(["intent", "user"], keep="first").reset_index(drop=True)


def _engaged(store: GraphStore, sessions: pd.DataFrame, cfg: EvidenceConfig) -> pd.DataFrame:
    """(head intent, tail category, count of sessions engaging it)."""
    inter = store.edge_table(("User", "INTERACTED", "Item"), ["ts"])
    inter = inter[inter["head"].isin(sessions["user"].unique())]
    leaf = store.edge_table(("Item", "BELONGS_TO", "Category"))[["head", "tail"]]
    inter = inter.merge(leaf.rename(columns={"head": "tail", "tail": "category"}), on="tail")
    joined = sessions.merge(inter[["head", "ts", "category"]], left_on="user", right_on="head")
    delta = (pd.to_datetime(joined["ts_y"]) - pd.to_datetime(joined["ts_x"])) / pd.Timedelta(days=1)
    inside = joined[(delta >= -cfg.before_days) & (delta <= cfg.after_days)]
    pairs = inside.drop_duplicates(["intent", "user", "category"])
    counts = pairs.groupby(["intent", "category"]).size().rename("count").reset_index()
    return counts.rename(columns={"intent": "head", "category": "tail"})


def _co(sessions: pd.DataFrame, *, later: bool) -> pd.DataFrame:
    """(head intent, tail intent, users with sessions of both); with ``later``: the tail's session
    started after the head's."""
    pairs = sessions.merge(sessions, on="user")
    keep = pairs["intent_x"] != pairs["intent_y"]
    if later:
        keep &= pd.to_datetime(pairs["ts_y"]).to_numpy() > pd.to_datetime(pairs["ts_x"]).to_numpy()
    pairs = pairs[keep]
    counts = pairs.groupby(["intent_x", "intent_y"]).size().rename("count").reset_index()
    return counts.rename(columns={"intent_x": "head", "intent_y": "tail"})


def _top(
    kind: str,
    tails: pd.Series,
    counts: pd.Series,
    shares: pd.Series,
    names: dict[str, str],
    cfg: EvidenceConfig,
) -> list[Item]:
    rows = [
        (kind, names[t], round(float(s), 3), int(c))
        for t, c, s in zip(tails, counts, shares, strict=True)
        if c >= cfg.min_count and t in names
    ]
    rows.sort(key=lambda r: (-r[3], r[1]))
    return rows[: cfg.top]
