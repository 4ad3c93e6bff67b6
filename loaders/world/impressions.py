"""Impression pages: what each event's user was shown, and the hidden click model behind it.

Every interaction event is the click of a *rec* page and every search event the click of a
*search* page (same user, item and time). A page shows ``impression_page_size`` distinct items of
the clicked item's domain; the clicked item's position k (0-based) is drawn ∝ (1 + k)^−B_POS, the
other positions hold items that were shown and not clicked.

Hidden click model (ground truth; ``hidden/click_model.parquet`` has p_click for every row)::

    p_click = sigmoid(B0 + B_REL·relevance + B_POP·log_pop − B_POS·log(1 + position))

- relevance = 1 if a leaf-level NEEDS of an intent episode the user has live on the page's day
  covers the item's leaf (the tables of :class:`~loaders.world.population.Behaviour`), else 0;
- log_pop = log(within-leaf Zipf share × items in the leaf), the item's popularity relative to a
  uniform pick (the catalogue's own popularity, as noise events draw it).

Non-clicked rows: a candidate comes from the clicked item's parent category (its leaf and the
sibling leaves; *hard* negatives, share ``impression_hard_share``) or else from the page's domain,
both ∝ popularity, and is kept as not clicked with probability 1 − p_click (rejection, so the
recorded negatives follow the click model); duplicates on a page are redrawn. A page is shorter
only if its domain holds fewer than ``impression_page_size`` items.

Own random stream ``(seed, 7, first user of the chunk)``: the other files are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loaders.world.catalogue import Catalogue
from loaders.world.config import WorldConfig
from loaders.world.ontology import Ontology
from loaders.world.population import Behaviour, Chunk

B0, B_REL, B_POP, B_POS = -3.0, 2.0, 0.4, 0.6
MAX_ROUNDS = 64
BATCH_USERS = 10_000  # pages are built and written for this many users at a time
TS = pa.timestamp("us")
VISIBLE = pa.schema(
    [
        ("request", pa.string()),
        ("user", pa.string()),
        ("query", pa.string()),
        ("item", pa.string()),
        ("domain", pa.string()),
        ("ts", TS),
        ("position", pa.int16()),
        ("clicked", pa.bool_()),
    ]
)
HIDDEN = pa.schema([("request", pa.string()), ("item", pa.string()), ("p_click", pa.float32())])


@dataclass(frozen=True)
class _Sampler:
    """Draws an item of a group ∝ weight (item rows sorted by group, CDF shifted by the group)."""

    order: np.ndarray
    cum: np.ndarray
    off: np.ndarray

    def draw(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pos = np.searchsorted(self.cum, group + rng.random(len(group)), side="right")
        out: np.ndarray = self.order[np.clip(pos, self.off[group], self.off[group + 1] - 1)]
        return out


def _sampler(group: np.ndarray, weight: np.ndarray, n_groups: int) -> _Sampler:
    order = np.argsort(group, kind="stable")
    g, w = group[order], weight[order]
    off = np.searchsorted(g, np.arange(n_groups + 1))
    cs = np.cumsum(w)
    before = np.concatenate([[0.0], cs])[off[:-1]]
    total = np.bincount(g, weights=w, minlength=n_groups)
    return _Sampler(order, g + (cs - before[g]) / total[g], off)


@dataclass(frozen=True)
class ClickModel:
    """Per-world tables for the click model and the candidate samplers (built once)."""

    needs: np.ndarray  # [intent, leaf] bool: the intent NEEDS the leaf (Behaviour's tables)
    item_leaf: np.ndarray
    item_domain: np.ndarray
    item_parent: np.ndarray
    log_pop: np.ndarray
    by_domain: _Sampler
    by_parent: _Sampler
    item_ids: pa.Array
    domain_ids: pa.Array


def build_click_model(onto: Ontology, b: Behaviour, cat: Catalogue) -> ClickModel:
    n_leaves = len(cat.leaf_ids)
    needs = np.zeros((len(b.intent_ids), n_leaves), dtype=bool)
    owner = np.floor(b.needs_cum - 1e-9).astype(np.int64)  # entries of intent i lie in (i, i + 1]
    real = b.has_needs[owner]
    needs[owner[real], b.needs_leaf[real]] = True
    counts = np.diff(cat.leaf_offsets)
    item_leaf = np.repeat(np.arange(n_leaves), counts)
    frac = cat.item_cum - item_leaf  # within-leaf CDF
    first = np.zeros(len(item_leaf), dtype=bool)
    first[cat.leaf_offsets[:-1][counts > 0]] = True
    share = frac - np.where(first, 0.0, np.concatenate([[0.0], frac[:-1]]))
    pop = np.maximum(share, 1e-12) * counts[item_leaf]
    parents = [onto.categories[x].parent or x for x in cat.leaf_ids]
    parent_ids = sorted(set(parents))
    leaf_parent = np.array([parent_ids.index(p) for p in parents], dtype=np.int64)
    item_domain = cat.leaf_domain[item_leaf]
    return ClickModel(
        needs=needs,
        item_leaf=item_leaf,
        item_domain=item_domain,
        item_parent=leaf_parent[item_leaf],
        log_pop=np.log(pop),
        by_domain=_sampler(item_domain, pop, len(cat.domains)),
        by_parent=_sampler(leaf_parent[item_leaf], pop, len(parent_ids)),
        item_ids=pa.array(cat.items["id"].to_numpy(dtype=object), type=pa.string()),
        domain_ids=pa.array(cat.domains, type=pa.string()),
    )


def _spans(off: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query row, entry) pairs: every entry off[k] … off[k + 1] − 1 for each key k."""
    n = off[keys + 1] - off[keys]
    q = np.repeat(np.arange(len(keys)), n)
    return q, np.repeat(off[keys] - np.cumsum(n) + n, n) + np.arange(len(q))


def p_click(m: ClickModel, relevant: np.ndarray, item: np.ndarray, position: np.ndarray) -> np.ndarray:
    z = B0 + B_REL * relevant + B_POP * m.log_pop[item] - B_POS * np.log1p(position)
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


def impression_tables(
    m: ClickModel,
    cfg: WorldConfig,
    chunk: Chunk,
    searches: pd.DataFrame,
    uid: np.ndarray,
    ts: np.ndarray,
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """The chunk's pages as (visible rows, hidden p_click), a batch of users at a time: rec pages
    for ``chunk.events``, search pages for ``searches`` (user, query, item, day; both sorted by
    user, as generated); ``ts`` holds their timestamps in that order, ``uid`` the user ids."""
    u0 = int(chunk.users[0])
    rng = np.random.default_rng([cfg.seed, 7, u0])
    ev, eps = chunk.events, chunk.episodes
    ev_user, s_user = ev["user"].to_numpy() - u0, searches["user"].to_numpy() - u0
    ep_off = np.searchsorted(eps["user"].to_numpy() - u0, np.arange(len(uid) + 1))
    ep = (eps["intent"].to_numpy(), eps["start"].to_numpy(), eps["end"].to_numpy())
    for lo in range(0, len(uid), BATCH_USERS):
        a, b = np.searchsorted(ev_user, [lo, lo + BATCH_USERS])
        c, d = np.searchsorted(s_user, [lo, lo + BATCH_USERS])
        yield _pages(
            m,
            cfg,
            rng,
            user=np.concatenate([ev_user[a:b], s_user[c:d]]),
            clicked=np.concatenate([ev["item"].to_numpy()[a:b], searches["item"].to_numpy()[c:d]]),
            day=np.concatenate([ev["day"].to_numpy()[a:b], searches["day"].to_numpy()[c:d]]),
            query=pa.concat_arrays(
                [pa.nulls(b - a, pa.string()).fill_null(""), pa.array(searches["query"].to_numpy()[c:d])]
            ),
            ts=np.concatenate([ts[a:b], ts[len(ev) + c : len(ev) + d]]),
            uid=uid,
            episodes=(ep_off, *ep),
        )


def _pages(
    m: ClickModel,
    cfg: WorldConfig,
    rng: np.random.Generator,
    *,
    user: np.ndarray,
    clicked: np.ndarray,
    day: np.ndarray,
    query: pa.Array,
    ts: np.ndarray,
    uid: np.ndarray,
    episodes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[pa.Table, pa.Table]:
    k, n = cfg.impression_page_size, len(user)
    # the intents live on each page's day, as (page, intent) pairs in CSR form
    ep_off, ep_intent, ep_start, ep_end = episodes
    pg, ep = _spans(ep_off, user)
    live = (ep_start[ep] <= day[pg]) & (day[pg] < ep_end[ep])
    live_off = np.searchsorted(pg[live], np.arange(n + 1))
    live_intent = ep_intent[ep[live]]

    def relevant(page: np.ndarray, item: np.ndarray) -> np.ndarray:
        q, e = _spans(live_off, page)
        hit = m.needs[live_intent[e], m.item_leaf[item[q]]]
        return np.bincount(q[hit], minlength=len(page)) > 0

    bias = (1.0 + np.arange(k)) ** -B_POS
    click_pos = np.searchsorted(np.cumsum(bias) / bias.sum(), rng.random(n), side="right").clip(0, k - 1)
    grid = np.broadcast_to(np.arange(k), (n, k))
    neg_pos = grid[grid != click_pos[:, None]].reshape(n, k - 1)
    neg = np.full((n, k - 1), -1, dtype=np.int64)
    neg_p = np.zeros((n, k - 1))
    todo = np.arange(n * (k - 1))
    for r in range(MAX_ROUNDS):
        if not len(todo):
            break
        page = todo // (k - 1)
        hard = rng.random(len(todo)) < cfg.impression_hard_share
        cand = np.empty(len(todo), dtype=np.int64)
        cand[hard] = m.by_parent.draw(m.item_parent[clicked[page[hard]]], rng)
        cand[~hard] = m.by_domain.draw(m.item_domain[clicked[page[~hard]]], rng)
        p = p_click(m, relevant(page, cand), cand, neg_pos.ravel()[todo])
        ok = (rng.random(len(todo)) >= p) & (cand != clicked[page])
        if r:  # pages already hold items from earlier rounds
            ok &= ~(neg[page] == cand[:, None]).any(1)
        kept = np.flatnonzero(ok)  # one copy of an item drawn twice for a page in this round
        take = kept[np.unique(page[kept] * len(m.item_leaf) + cand[kept], return_index=True)[1]]
        neg.reshape(-1)[todo[take]] = cand[take]
        neg_p.reshape(-1)[todo[take]] = p[take]
        todo = np.delete(todo, take)
    items = np.empty((n, k), dtype=np.int64)
    probs = np.empty((n, k))
    rows = np.arange(n)[:, None]
    items[rows, neg_pos], probs[rows, neg_pos] = neg, neg_p
    items[rows[:, 0], click_pos] = clicked
    probs[rows[:, 0], click_pos] = p_click(m, relevant(np.arange(n), clicked), clicked, click_pos)
    # rows by (user, time, position); request "imp:<user>:<n-th page of the user in the chunk>"
    order = np.lexsort((day, user))
    nth = np.arange(n) - np.searchsorted(user[order], user[order])
    users = pa.array(uid, type=pa.string()).take(user[order].astype(np.int32))
    request = pc.binary_join_element_wise("imp", users, pa.array(nth).cast(pa.string()), ":")
    keep = items[order] >= 0
    row_page = pa.array(np.repeat(np.arange(n, dtype=np.int32), k).reshape(n, k)[keep])
    req, page = request.take(row_page), pa.array(order.astype(np.int32)).take(row_page)
    item = m.item_ids.take(items[order][keep].astype(np.int32))
    domain = m.item_domain[clicked[order]].astype(np.int8)
    visible = pa.Table.from_arrays(
        [
            req,
            users.take(row_page),
            query.take(page),
            item,
            pa.DictionaryArray.from_arrays(pa.array(domain).take(row_page), m.domain_ids).cast(pa.string()),
            pa.array(ts, type=TS).take(page),
            pa.array(grid[order][keep].astype(np.int16)),
            pa.array((grid == click_pos[:, None])[order][keep]),
        ],
        schema=VISIBLE,
    )
    return visible, pa.Table.from_arrays(
        [req, item, pa.array(probs[order][keep].astype(np.float32))], schema=HIDDEN
    )
