"""The catalogue: items placed in the ontology's leaf categories, with brands, prices and text.

Generative story
- Leaf categories get items in proportion to ``1 + Σ_intents prevalence × NEEDS weight`` (what
  people need is what platforms stock), at least one item per leaf when there are enough items.
- An item's brand is drawn from the brands that sell in one of its leaf's ancestors (or the leaf
  itself); leaves no brand covers get a house brand named after their root category.
- Popularity within a leaf is Zipf: the item of rank r (a random order) has weight r^(-α).
- Price: log-normal around a per-kind median (products 40, services 120, financial and travel
  products 300, mini-apps 0) scaled by the brand's tier.
- Title "<Brand> <adjective> <leaf name>", description "<Adjective> <leaf name> by <Brand>, with
  <feature>; <domain name>." from the ontology's vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loaders.world.ontology import Ontology

KIND_PRICE = {
    "product": 40.0,
    "service": 120.0,
    "financial_product": 300.0,
    "travel_product": 300.0,
    "mini_app": 0.0,
}
TIER_PRICE = {"budget": 0.6, "mid": 1.0, "premium": 2.2}
ITEM_KIND = {
    "product": "product",
    "service": "service",
    "mini_app": "mini_app",
    "financial_product": "service",
    "travel_product": "service",
}


@dataclass(frozen=True)
class Catalogue:
    """Items as aligned arrays plus per-leaf sampling tables."""

    items: pd.DataFrame  # id, name, kind, title, description, price, leaf, brand, domain
    leaf_ids: list[str]
    leaf_index: dict[str, int]
    leaf_domain: np.ndarray  # domain index per leaf
    leaf_offsets: np.ndarray  # items of leaf l are item rows [offsets[l], offsets[l+1])
    item_cum: np.ndarray  # per-leaf cumulative popularity, shifted by the leaf index
    domains: list[str]
    house_brands: pd.DataFrame  # id, name (brands the ontology lacks for some leaves)


def _root(onto: Ontology, cat_id: str) -> str:
    anc = onto.ancestors(cat_id)
    return anc[-1] if anc else cat_id


def _leaf_weights(onto: Ontology, leaves: list[str]) -> np.ndarray:
    weight = dict.fromkeys(leaves, 1.0)
    for intent in onto.intents.values():
        for leaf, w in onto.needs(intent.id).items():
            weight[leaf] = weight.get(leaf, 1.0) + 20.0 * intent.prevalence * w
    return np.array([weight[x] for x in leaves])


def _allocate(weights: np.ndarray, n_items: int) -> np.ndarray:
    """Items per leaf ∝ weights, every leaf ≥ 1 when n_items allows (largest remainder)."""
    base = 1 if n_items >= len(weights) else 0
    rest = n_items - base * len(weights)
    share = weights / weights.sum() * rest
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: rest - counts.sum()]] += 1
    out: np.ndarray = counts + base
    return out


def _brand_pool(onto: Ontology, leaves: list[str]) -> tuple[list[list[str]], pd.DataFrame]:
    sells: dict[str, list[str]] = {}
    for brand in sorted(onto.brands.values(), key=lambda b: b.id):
        for cat in brand.categories:
            sells.setdefault(cat, []).append(brand.id)
    pools, house = [], {}
    for leaf in leaves:
        pool = [b for c in [leaf, *onto.ancestors(leaf)] for b in sells.get(c, [])]
        if not pool:
            root = _root(onto, leaf)
            bid = f"brand_house_{root.removeprefix('cat_')}"
            house[bid] = f"{onto.categories[root].name} Basics"
            pool = [bid]
        pools.append(pool)
    return pools, pd.DataFrame({"id": list(house), "name": list(house.values())})


def build_catalogue(onto: Ontology, n_items: int, alpha: float, rng: np.random.Generator) -> Catalogue:
    leaves = sorted(onto.leaves())
    domains = sorted(onto.domains)
    counts = _allocate(_leaf_weights(onto, leaves), n_items)
    pools, house = _brand_pool(onto, leaves)
    tiers = {b.id: b.tier for b in onto.brands.values()}
    brand_names = {b.id: b.name for b in onto.brands.values()} | dict(
        zip(house["id"], house["name"], strict=True)
    )
    vocab: dict[str, Any] = onto.vocabulary
    rows, cum_parts = [], []
    for li, (leaf, k) in enumerate(zip(leaves, counts, strict=True)):
        cat = onto.categories[leaf]
        root = _root(onto, leaf)
        adjectives = vocab["adjectives"].get(root, ["classic"])
        features = vocab["materials_or_features"].get(root, ["a one-year warranty"])
        pop = (rng.permutation(k) + 1.0) ** -alpha
        cum_parts.append(li + np.cumsum(pop) / pop.sum())
        for _ in range(k):
            brand = pools[li][int(rng.integers(len(pools[li])))]
            adj = adjectives[int(rng.integers(len(adjectives)))]
            feat = features[int(rng.integers(len(features)))]
            median = KIND_PRICE.get(cat.kind, 40.0) * TIER_PRICE.get(tiers.get(brand, "mid"), 1.0)
            price = round(float(median * rng.lognormal(0.0, 0.5)), 2) if median else 0.0
            bname = brand_names[brand]
            rows.append(
                {
                    "name": f"{adj} {cat.name}".lower(),
                    "kind": ITEM_KIND.get(cat.kind, "product"),
                    "title": f"{bname} {adj} {cat.name.lower()}",
                    "description": f"{adj.capitalize()} {cat.name.lower()} by {bname}, with {feat}; "
                    f"{onto.domains[cat.domain].name.lower()}.",
                    "price": price,
                    "leaf": leaf,
                    "brand": brand,
                    "domain": cat.domain,
                }
            )
    items = pd.DataFrame(rows)
    items.insert(0, "id", [f"it_{i:07d}" for i in range(len(items))])
    return Catalogue(
        items=items,
        leaf_ids=leaves,
        leaf_index={x: i for i, x in enumerate(leaves)},
        leaf_domain=np.array([domains.index(onto.categories[x].domain) for x in leaves]),
        leaf_offsets=np.concatenate([[0], np.cumsum(counts)]),
        item_cum=np.concatenate(cum_parts) if cum_parts else np.zeros(0),
        domains=domains,
        house_brands=house,
    )


def sample_items(cat: Catalogue, leaves: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One item row per requested leaf index, by within-leaf popularity."""
    u = leaves + rng.random(len(leaves))
    pos = np.searchsorted(cat.item_cum, u, side="right")
    lo, hi = cat.leaf_offsets[leaves], cat.leaf_offsets[leaves + 1] - 1
    return np.clip(pos, lo, hi)
