"""Behavioural evidence for knowledge-empowered prompts: what users did around an intent's searches.

PAIR's prompts carry domain knowledge (Gan et al., "Making Large Language Models Better Knowledge
Miners for Online Marketing with Progressive Prompting Augmentation", arXiv 2312.05276). Besides
the graph's known neighbours (:mod:`mining.pipeline.context`), a marketing platform knows what its
users did: the store's visible tables hold searches (``User -SEARCHED-> Query``, with the query
text and time) and interactions (``User -INTERACTED-> Item -BELONGS_TO-> Category``). Nothing here
reads hidden truth.

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
  their session of the head; share = those users / the head intent's sessions;
- shared engagement (Intent → Intent, CO_OCCURS_WITH, a second-order signal): intents whose own
  top engaged categories (the ``needs_top`` best by sessions × log(lift), at least 2 sessions) the
  head's session users engaged with at any time; share = those users / the head intent's sessions.
  Intents that occur together are searched by the same kind of user even when one user rarely
  searches both, so this ranks co-occurring intents better than co-search counts.

Each item also carries its *lift*: the share over the share among every intent's session users
(for categories: of the session users who engaged the category in any of their windows; for
intents: of the session users who searched the tail intent; for shared engagement: of the session
users who engaged any of the tail intent's top categories), so a category or intent that every
searcher touches is not mistaken for a specific one. Each list keeps the ``top`` entries with at
least ``min_count`` sessions and lift above 1, ranked by sessions × log(lift) (ties by name).
The evidence is computed once per mining job and kept in its checkpoint, so a resumed job prompts
exactly as before. It is opt-in (``MiningConfig.evidence``): prompts change with it, and so does
every answer of a prompt-seeded teacher.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from graph.store import GraphStore

# kind of evidence -> the mined relation it speaks for (the prompt shows the kind, LightPAIR maps it)
KINDS: dict[str, str] = {
    "engaged categories": "NEEDS",
    "searched by intents": "SERVES",
    "co-searched intents": "CO_OCCURS_WITH",
    "searched next": "PRECEDES",
    "intents whose categories its searchers engage": "CO_OCCURS_WITH",
}
SHARED = "intents whose categories its searchers engage"

Item = tuple[str, str, float, int, float]  # (kind, tail name, share, sessions, lift)


@dataclass(frozen=True)
class EvidenceConfig:
    """The session window (days around the anchor search) and the list lengths."""

    before_days: float = 1.0
    after_days: float = 14.0
    top: int = 12
    min_count: int = 1
    needs_top: int = 5
    shared: bool = True


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
            out[label, node_id] = [(str(k), str(n), float(s), int(c), float(x)) for k, n, s, c, x in items]
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
        searchers = sessions["user"].nunique()
        user_cat = _user_categories(store, pd.Index(sessions["user"].unique()))
        engaged, base = _engaged(sessions, user_cat, cfg)
        intent_base = n_sessions / searchers
        engaged = _rated(engaged, n_sessions, base)
        lists = [
            ("engaged categories", engaged, cname),
            ("co-searched intents", _rated(_co(sessions, later=False), n_sessions, intent_base), iname),
            ("searched next", _rated(_co(sessions, later=True), n_sessions, intent_base), iname),
        ]
        if cfg.shared:
            lists.append((SHARED, _shared(sessions, user_cat, engaged, n_sessions, cfg), iname))
        out: dict[tuple[str, str], list[Item]] = defaultdict(list)
        for kind, pairs, names in lists:
            for head, rows in pairs.groupby("head", sort=True):
                out["Intent", str(head)] += _top(kind, rows, rows["tail"], names, cfg)
            if kind == "engaged categories":
                for cat, rows in pairs.groupby("tail", sort=True):
                    out["Category", str(cat)] += _top("searched by intents", rows, rows["head"], iname, cfg)
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


def _user_categories(store: GraphStore, users: pd.Index) -> pd.DataFrame:
    """(user, ts, category): the leaf category of every interaction of ``users``."""
    inter = store.edge_table(("User", "INTERACTED", "Item"), ["ts"])
    inter = inter[inter["head"].isin(users)]
    leaf = store.edge_table(("Item", "BELONGS_TO", "Category"))[["head", "tail"]]
    inter = inter.merge(leaf.rename(columns={"head": "tail", "tail": "category"}), on="tail")
    return inter.rename(columns={"head": "user"})[["user", "ts", "category"]]


def _engaged(
    sessions: pd.DataFrame, user_cat: pd.DataFrame, cfg: EvidenceConfig
) -> tuple[pd.DataFrame, pd.Series]:
    """(head intent, tail category, count of sessions engaging it), and per category the share of
    all session users who engaged it in one of their windows (the base rate of its lift)."""
    joined = sessions.merge(user_cat, on="user")
    delta = (pd.to_datetime(joined["ts_y"]) - pd.to_datetime(joined["ts_x"])) / pd.Timedelta(days=1)
    inside = joined[(delta >= -cfg.before_days) & (delta <= cfg.after_days)]
    pairs = inside.drop_duplicates(["intent", "user", "category"])
    counts = pairs.groupby(["intent", "category"]).size().rename("count").reset_index()
    base = pairs.drop_duplicates(["user", "category"]).groupby("category").size() / sessions["user"].nunique()
    return counts.rename(columns={"intent": "head", "category": "tail"}), base


def _rated(pairs: pd.DataFrame, n_sessions: pd.Series, rate: pd.Series) -> pd.DataFrame:
    """Add share (count / the head's sessions) and lift (share / the tail's base rate)."""
    pairs = pairs.assign(share=pairs["count"] / pairs["head"].map(n_sessions).to_numpy())
    return pairs.assign(lift=pairs["share"] / pairs["tail"].map(rate).to_numpy())


def _shared(
    sessions: pd.DataFrame,
    user_cat: pd.DataFrame,
    engaged: pd.DataFrame,
    n_sessions: pd.Series,
    cfg: EvidenceConfig,
) -> pd.DataFrame:
    """(head intent, tail intent, count, share, lift): the head's session users who engaged (at any
    time) with one of the tail's top categories; the lift's base is the share of all session users
    who did."""
    good = engaged[(engaged["count"] >= 2) & (engaged["lift"] > 1.0)]
    good = good.assign(score=good["count"] * np.log(good["lift"].to_numpy()))
    top = good.sort_values(["head", "score", "tail"], ascending=[True, False, True])
    top = top.groupby("head").head(cfg.needs_top)[["head", "tail"]]
    top = top.rename(columns={"head": "intent", "tail": "category"})
    engaged_any = user_cat[["user", "category"]].drop_duplicates()
    # user -> the intents whose top categories the user engaged with
    user_intent = engaged_any.merge(top, on="category")[["user", "intent"]].drop_duplicates()
    base = user_intent.groupby("intent").size() / sessions["user"].nunique()
    pairs = sessions[["intent", "user"]].merge(user_intent.rename(columns={"intent": "tail"}), on="user")
    pairs = pairs[pairs["intent"] != pairs["tail"]]
    counts = pairs.groupby(["intent", "tail"]).size().rename("count").reset_index()
    return _rated(counts.rename(columns={"intent": "head"}), n_sessions, base)


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
    kind: str, rows: pd.DataFrame, tails: pd.Series, names: dict[str, str], cfg: EvidenceConfig
) -> list[Item]:
    items = [
        (kind, names[t], round(float(s), 3), int(c), round(float(x), 2))
        for t, c, s, x in zip(tails, rows["count"], rows["share"], rows["lift"], strict=True)
        if c >= cfg.min_count and x > 1.0 and t in names
    ]
    items.sort(key=lambda r: (-r[3] * math.log(r[4]), r[1]))
    return items[: cfg.top]
