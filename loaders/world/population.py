"""Users, their latent intents, and the events those intents cause (vectorised per chunk).

Generative story (time in days since ``config.start``; observed history is [0, span))
1. Domains: a user is active in domain d with probability ``DOMAIN_ACTIVITY[d]`` (at least one;
   the cold-start domain is rare).
2. Latent intents drift as *episodes*: 1 + Poisson(m − 1) episodes per user, intent ∝ prevalence,
   start ~ U(−60, span + horizon), length = the intent's typical duration × LogNormal(0, 0.4),
   intensity ~ Gamma(2, 0.5). An episode spawns a PRECEDES successor (starting 0–14 days after it
   ends) with probability ``follow_prob`` and a CO_OCCURS_WITH partner (overlapping) with
   probability ``co_occur_prob``. So a user's intent mixture changes over time.
3. Events: a user's rate ~ Gamma(1.2, mean/1.2) (heavy-tailed activity), count ~ Poisson(rate).
   With probability ``noise`` (or when no episode overlaps the history) an event is
   popularity-driven: a leaf ∝ its item count, a time ~ U(0, span). Otherwise it picks an
   episode ∝ intensity × overlap, a time inside it, a leaf ∝ the intent's NEEDS weights (expanded
   to leaves), then an item by within-leaf Zipf popularity. Events in a domain the user is not
   active in are dropped; cold-start-domain events are thinned further. Purchases happen with
   probability ``purchase_prob``, the rest are clicks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from loaders.world.catalogue import Catalogue, sample_items
from loaders.world.config import DOMAIN_ACTIVITY, WorldConfig
from loaders.world.ontology import Ontology

HISTORY_LEAD_DAYS = 60.0


@dataclass(frozen=True)
class Behaviour:
    """Sampling tables derived once from the ontology and catalogue."""

    intent_ids: list[str]
    prevalence: np.ndarray
    duration: np.ndarray
    needs_cum: np.ndarray  # per-intent CDF over leaves, shifted by the intent index
    needs_leaf: np.ndarray
    has_needs: np.ndarray
    succ_off: np.ndarray
    succ: np.ndarray
    co_off: np.ndarray
    co: np.ndarray
    leaf_cum: np.ndarray  # CDF over leaves ∝ item count (noise events)
    activity: np.ndarray  # per domain
    cold_domain: int


def _csr(pairs: list[tuple[int, int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = sorted(pairs)
    heads = np.array([h for h, _ in pairs], dtype=np.int64)
    tails = np.array([t for _, t in pairs], dtype=np.int64)
    off = np.searchsorted(heads, np.arange(n + 1)) if len(pairs) else np.zeros(n + 1, dtype=np.int64)
    return off.astype(np.int64), tails


def build_behaviour(onto: Ontology, cat: Catalogue) -> Behaviour:
    ids = sorted(onto.intents)
    idx = {x: i for i, x in enumerate(ids)}
    stocked = np.diff(cat.leaf_offsets) > 0
    cum_parts, leaf_parts, has = [], [], []
    for i, intent in enumerate(ids):
        needs = {
            cat.leaf_index[k]: w
            for k, w in sorted(onto.needs(intent).items())
            if k in cat.leaf_index and stocked[cat.leaf_index[k]]
        }
        has.append(bool(needs))
        leaves = np.array(list(needs) or [0], dtype=np.int64)
        w = np.array(list(needs.values()) or [1.0])
        cum_parts.append(i + np.cumsum(w) / w.sum())
        leaf_parts.append(leaves)
    precedes = [(idx[r.head], idx[r.tail]) for r in onto.relations_of("PRECEDES")]
    co = [(idx[r.head], idx[r.tail]) for r in onto.relations_of("CO_OCCURS_WITH")]
    co += [(t, h) for h, t in co]
    counts = np.diff(cat.leaf_offsets).astype(float)
    cold = [d for d in cat.domains if onto.domains[d].cold_start]
    return Behaviour(
        intent_ids=ids,
        prevalence=np.array([onto.intents[x].prevalence for x in ids]),
        duration=np.array([float(onto.intents[x].duration_days) for x in ids]),
        needs_cum=np.concatenate(cum_parts),
        needs_leaf=np.concatenate(leaf_parts),
        has_needs=np.array(has),
        succ_off=_csr(precedes, len(ids))[0],
        succ=_csr(precedes, len(ids))[1],
        co_off=_csr(co, len(ids))[0],
        co=_csr(co, len(ids))[1],
        leaf_cum=np.cumsum(counts) / counts.sum(),
        activity=np.array([DOMAIN_ACTIVITY.get(d, 0.3) for d in cat.domains]),
        cold_domain=cat.domains.index(cold[0]) if cold else -1,
    )


@dataclass
class Chunk:
    """One chunk of users and everything they did (user indices are global)."""

    users: np.ndarray
    active: np.ndarray  # [C, D] bool
    episodes: pd.DataFrame  # user, intent, start, end, weight (days)
    events: pd.DataFrame  # user, item, leaf, intent (-1 for noise), day, purchase


def _pick_csr(
    off: np.ndarray, targets: np.ndarray, src: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    deg = off[src + 1] - off[src]
    ok = deg > 0
    pick = off[src[ok]] + np.floor(rng.random(int(ok.sum())) * deg[ok]).astype(np.int64)
    return ok, targets[pick]


def _episodes(b: Behaviour, cfg: WorldConfig, users: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = 1 + rng.poisson(max(cfg.episodes_per_user - 1.0, 0.0), len(users))
    user = np.repeat(users, n)
    intent = rng.choice(len(b.intent_ids), len(user), p=b.prevalence / b.prevalence.sum())
    start = rng.uniform(-HISTORY_LEAD_DAYS, cfg.total_days(), len(user))
    parts = [(user, intent, start)]
    end0 = start + b.duration[intent] * rng.lognormal(0.0, 0.4, len(user))
    for off, tgt, prob, follow in (
        (b.succ_off, b.succ, cfg.follow_prob, True),
        (b.co_off, b.co, cfg.co_occur_prob, False),
    ):
        ok, nxt = _pick_csr(off, tgt, intent, rng)
        take = rng.random(len(nxt)) < prob
        base_start, base_end = start[ok][take], end0[ok][take]
        s = (
            base_end + rng.uniform(0, 14, len(base_start))
            if follow
            else base_start + rng.uniform(0, 0.5, len(base_start)) * (base_end - base_start)
        )
        parts.append((user[ok][take], nxt[take], s))
    u = np.concatenate([p[0] for p in parts])
    i = np.concatenate([p[1] for p in parts])
    s = np.concatenate([p[2] for p in parts])
    e = s + np.maximum(b.duration[i] * rng.lognormal(0.0, 0.4, len(i)), 1.0)
    e[: len(end0)] = np.maximum(end0, s[: len(end0)] + 1.0)
    order = np.lexsort((s, u))
    return pd.DataFrame(
        {
            "user": u[order],
            "intent": i[order],
            "start": s[order],
            "end": e[order],
            "weight": rng.gamma(2.0, 0.5, len(u))[order],
        }
    )


def _grouped_choice(
    group: np.ndarray, weight: np.ndarray, want: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """For each entry of ``want`` (a group id), a row of that group ∝ weight (rows sorted by group).

    Returns (found mask over ``want``, chosen row per found entry)."""
    if len(group) == 0:
        return np.zeros(len(want), dtype=bool), np.zeros(0, dtype=np.int64)
    starts = np.searchsorted(group, want, side="left")
    ends = np.searchsorted(group, want, side="right")
    found = ends > starts
    csum = np.cumsum(weight)
    before = np.where(starts > 0, csum[np.maximum(starts - 1, 0)], 0.0)
    total = csum[np.maximum(ends - 1, 0)] - before
    target = before + rng.random(len(want)) * total
    row = np.searchsorted(csum, target[found], side="right")
    return found, np.clip(row, starts[found], ends[found] - 1)


def _events(
    b: Behaviour,
    cat: Catalogue,
    cfg: WorldConfig,
    users: np.ndarray,
    active: np.ndarray,
    eps: pd.DataFrame,
    rng: np.random.Generator,
) -> pd.DataFrame:
    span = float(cfg.span_days)
    rate = rng.gamma(1.2, cfg.events_per_user / 1.2, len(users))
    ev_user = np.repeat(users, rng.poisson(rate))
    lo, hi = np.clip(eps["start"].to_numpy(), 0, span), np.clip(eps["end"].to_numpy(), 0, span)
    overlap = hi - lo
    seen = (overlap > 0) & b.has_needs[eps["intent"].to_numpy()]
    w = np.where(seen, eps["weight"].to_numpy() * overlap, 0.0)
    eu = eps["user"].to_numpy()
    keep_ep = w > 0
    found, row = _grouped_choice(eu[keep_ep], w[keep_ep], ev_user, rng)
    intent_ev = found & (rng.random(len(ev_user)) >= cfg.noise)
    sel = np.flatnonzero(found)[intent_ev[found]]
    rows = row[intent_ev[found]]
    n = len(ev_user)
    intent = np.full(n, -1, dtype=np.int64)
    day = rng.uniform(0, span, n)
    intent[sel] = eps["intent"].to_numpy()[keep_ep][rows]
    day[sel] = lo[keep_ep][rows] + rng.random(len(sel)) * overlap[keep_ep][rows]
    leaf = np.searchsorted(b.leaf_cum, rng.random(n), side="right").clip(0, len(b.leaf_cum) - 1)
    pos = np.searchsorted(b.needs_cum, intent[sel] + rng.random(len(sel)), side="right")
    leaf[sel] = b.needs_leaf[np.minimum(pos, len(b.needs_leaf) - 1)]
    dom = cat.leaf_domain[leaf]
    keep = active[ev_user - users[0], dom]
    keep &= (dom != b.cold_domain) | (rng.random(n) < cfg.cold_start_keep)
    leaf, ev_user, intent, day = leaf[keep], ev_user[keep], intent[keep], day[keep]
    item = sample_items(cat, leaf, rng)
    order = np.lexsort((day, ev_user))
    return pd.DataFrame(
        {
            "user": ev_user[order],
            "item": item[order],
            "leaf": leaf[order],
            "intent": intent[order],
            "day": day[order],
            "purchase": (rng.random(len(leaf)) < cfg.purchase_prob)[order],
        }
    )


def generate_chunk(b: Behaviour, cat: Catalogue, cfg: WorldConfig, chunk: int) -> Chunk:
    """Users [chunk × chunk_users, …) with their episodes and events; seeded by (seed, chunk)."""
    rng = np.random.default_rng([cfg.seed, 1, chunk])
    u0 = chunk * cfg.chunk_users
    users = np.arange(u0, min(u0 + cfg.chunk_users, cfg.n_users), dtype=np.int64)
    active = rng.random((len(users), len(b.activity))) < b.activity
    none = ~active.any(axis=1)
    active[none, int(np.argmax(b.activity))] = True
    eps = _episodes(b, cfg, users, rng)
    events = _events(b, cat, cfg, users, active, eps, rng)
    return Chunk(users, active, eps, events)
