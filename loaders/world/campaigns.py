"""Campaigns aimed at intents, their (hidden) converting users, and search queries.

Campaigns run after the observed history, in [span, span + horizon): a campaign targets one or
two intents and runs in the domain that holds most of its first intent's NEEDS weight, for 30
days. Ground truth (evaluators only): a user converts if they are active in the campaign's domain
and have an episode of a targeted intent overlapping the campaign window, with probability
``conversion_prob``. A campaign's ``budget`` is its number of converters, the audience size an
advertiser would pay for.

Search queries precede a share of events. The text fills a template of the ontology's
vocabulary with the event's category, brand, intent or an adjective; its id hashes the text.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

from loaders.world.catalogue import Catalogue
from loaders.world.config import WorldConfig
from loaders.world.ontology import Ontology
from loaders.world.population import Behaviour, Chunk

CAMPAIGN_DAYS = 30.0
_SLOT = re.compile(r"\{(\w+)\}")


def plan_campaigns(onto: Ontology, b: Behaviour, cat: Catalogue, cfg: WorldConfig) -> pd.DataFrame:
    """Campaign rows: id, name, description, domain, intents (list of intent indices), window."""
    rng = np.random.default_rng([cfg.seed, 2])
    eligible = np.flatnonzero(b.has_needs)
    p = b.prevalence[eligible] / b.prevalence[eligible].sum()
    rows = []
    for c in range(cfg.n_campaigns):
        k = 1 + int(rng.random() < 0.35)
        chosen = [int(x) for x in rng.choice(eligible, size=k, replace=False, p=p)]
        needs = onto.needs(b.intent_ids[chosen[0]])
        by_domain: dict[str, float] = {}
        for leaf, w in needs.items():
            d = onto.categories[leaf].domain
            by_domain[d] = by_domain.get(d, 0.0) + w
        domain = max(sorted(by_domain), key=lambda d: by_domain[d])
        start = cfg.span_days + rng.uniform(0, max(cfg.horizon_days - CAMPAIGN_DAYS, 0.0))
        names = [onto.intents[b.intent_ids[i]].name for i in chosen]
        rows.append(
            {
                "id": f"camp_{c:04d}",
                "name": f"{' & '.join(names)} ({onto.domains[domain].name})",
                "description": f"Reach people with {' or '.join(names)} in {onto.domains[domain].name}.",
                "domain": domain,
                "intents": chosen,
                "start": start,
                "end": start + CAMPAIGN_DAYS,
            }
        )
    return pd.DataFrame(rows)


def conversions(
    campaigns: pd.DataFrame, chunk: Chunk, cat: Catalogue, cfg: WorldConfig, rng: np.random.Generator
) -> pd.DataFrame:
    """(campaign, user) pairs of the chunk's users who would convert."""
    eps = chunk.episodes
    out = []
    for cid, domain, intents, start, end in campaigns[["id", "domain", "intents", "start", "end"]].itertuples(
        index=False
    ):
        d = cat.domains.index(str(domain))
        hit = eps["intent"].isin(list(intents)) & (eps["start"] < end) & (eps["end"] > start)
        users = np.unique(eps.loc[hit, "user"].to_numpy())
        users = users[chunk.active[users - chunk.users[0], d]]
        users = users[rng.random(len(users)) < cfg.conversion_prob]
        out.append(pd.DataFrame({"campaign": cid, "user": users}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["campaign", "user"])


def _fill(template: str, values: dict[str, str]) -> str | None:
    slots = _SLOT.findall(template)
    if any(s not in values for s in slots):
        return None
    return _SLOT.sub(lambda m: values[m.group(1)], template)


def query_id(text: str) -> str:
    return "q_" + hashlib.sha1(text.encode()).hexdigest()[:12]


def searches(
    onto: Ontology,
    b: Behaviour,
    cat: Catalogue,
    cfg: WorldConfig,
    events: pd.DataFrame,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Search queries preceding a share of the events: user, query, text, item, day."""
    ev = events[rng.random(len(events)) < cfg.search_prob]
    templates: list[str] = list(onto.vocabulary["query_templates"])
    pick, adj_pick = rng.integers(0, len(templates), len(ev)), rng.random(len(ev))
    brand_names = {x.id: x.name for x in onto.brands.values()} | dict(
        zip(cat.house_brands["id"], cat.house_brands["name"], strict=True)
    )
    item_brand = [brand_names[x] for x in cat.items["brand"]]
    leaf_name = [onto.categories[x].name.lower() for x in cat.leaf_ids]
    vocab = onto.vocabulary["adjectives"]
    leaf_adj = [vocab.get(([x, *onto.ancestors(x)])[-1], ["good"]) for x in cat.leaf_ids]
    intent_name = [onto.intents[x].name for x in b.intent_ids]
    texts = []
    for leaf, item, intent, t, a in zip(
        ev["leaf"].to_numpy(), ev["item"].to_numpy(), ev["intent"].to_numpy(), pick, adj_pick, strict=True
    ):
        adjectives = leaf_adj[leaf]
        values = {
            "category": leaf_name[leaf],
            "brand": item_brand[item],
            "adjective": adjectives[int(a * len(adjectives))],
        }
        if intent >= 0:
            values["intent"] = intent_name[intent]
        texts.append(_fill(templates[int(t)], values) or values["category"])
    return pd.DataFrame(
        {
            "user": ev["user"].to_numpy(),
            "query": [query_id(x) for x in texts],
            "text": texts,
            "item": ev["item"].to_numpy(),
            "day": ev["day"].to_numpy() - rng.uniform(0, 0.01, len(ev)),
        }
    )
