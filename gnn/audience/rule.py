"""Rule targeting: users within k hops of the campaign's intents, through the KG and the catalogue.

The named query ``audience_rule`` (``queries/library/audience_rule.cypher``) walks from every
intent ``i`` a campaign ``c`` TARGETS along at most ``hops`` edges of the relation types NEEDS,
SERVES, CO_OCCURS_WITH, PRECEDES, SUBCATEGORY_OF, BELONGS_TO, CLICKED (:data:`RULE_WALK`) and, in a
store holding a knowledge graph a user loaded, SAME_AS and every relation type declared for it
(:func:`~gnn.audience.base.declared_kg_edges`), then INTERACTED or SEARCHED (in either direction)
to users ``u``, and scores

.. math::

    s(u, c) = \\sum_{i \\in T(c)} w_{ci} \\sum_{p \\in P_{\\le k}(i, u)} \\prod_{e \\in p} \\mathrm{conf}(e)

where :math:`P_{\\le k}(i, u)` are the walks of length ≤ k and ``conf`` the edge confidence: users
are ranked by confidence-weighted path count (the query also returns the plain count). Users no
path reaches score 0. Without a KG (no NEEDS/SERVES/... edges) intents reach no user, so every
score is 0: the rule needs a KG. ``explain`` runs ``audience_rule_paths``.

The query never lists paths (that is what made it slow at scale: 29 s for one campaign of the
1M-user benchmark world, mostly reading each path's edge properties). Every walk ends with one
INTERACTED or SEARCHED step onto the user, and before that stays in the KG and the catalogue
(users are ≥ 3 hops from any intent, so for k ≤ 4 no walk passes a user on the way; for k = 5
walks through a second user, i.e. collaborative hops, are left out by design). So the sum
factorises hop by hop: with :math:`f_1(x) = \\sum_i w_{ci}\\,\\mathrm{conf}(i, x)` and
:math:`f_{d+1}(y) = \\sum_x f_d(x)\\,\\mathrm{conf}(x, y)` over the catalogue relations,
:math:`s(u, c) = \\sum_{d=1}^{k-1} \\sum_x f_d(x)\\,\\mathrm{conf}(x, u)`; the query aggregates
each stage with ``WITH … sum(…)``, one ``UNION ALL`` branch per walk length.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gnn.audience.base import (
    AudienceError,
    GraphPath,
    declared_kg_edges,
    load_campaign,
    score_frame,
    store_users,
)
from graph.store import GraphStore

RULE_WALK = ("NEEDS", "SERVES", "CO_OCCURS_WITH", "PRECEDES", "SUBCATEGORY_OF", "BELONGS_TO", "CLICKED")


@dataclass(frozen=True)
class RuleConfig:
    """Args: hops: the longest path from an intent to a user (2-5); explain_paths: paths per user;
    store_kg: also walk a loaded KG (SAME_AS and the relation types declared in the store)."""

    hops: int = 4
    explain_paths: int = 10
    store_kg: bool = True


class RuleTargeter:
    """Cypher rule over the store (see the module docstring)."""

    name = "rule"
    config_type = RuleConfig

    def __init__(self) -> None:
        self.store: GraphStore | None = None
        self.config = RuleConfig()
        self.users: list[str] = []
        self.walk = "|".join(RULE_WALK)

    def fit(self, store: GraphStore, config: RuleConfig | None = None) -> RuleTargeter:
        """Nothing to learn: keep the store (queries run at scoring time) and the user list."""
        self.store, self.config = store, config or RuleConfig()
        self.users = store_users(store)
        kg = [r for _h, r, _t in declared_kg_edges(store)] if self.config.store_kg else []
        self.walk = "|".join(dict.fromkeys([*RULE_WALK, *kg]))
        return self

    def _store(self) -> GraphStore:
        if self.store is None:
            raise AudienceError("the rule targeter is not fitted; call fit(store, config) first")
        return self.store

    def score(self, campaign: str) -> pd.DataFrame:
        store = self._store()
        if not 2 <= self.config.hops <= 5:
            raise AudienceError(f"rule hops must be between 2 and 5, got {self.config.hops}")
        load_campaign(store, campaign)
        params = {"campaign_id": campaign, "hops": self.config.hops, "walk": self.walk}
        df = store.run("audience_rule", params)
        reached = df.groupby("user")["score"].sum().astype(float) if len(df) else pd.Series(dtype=float)
        return score_frame(self.users, reached.reindex(self.users, fill_value=0.0).to_numpy())

    def explain(self, user: str, campaign: str) -> list[GraphPath]:
        params = {
            "campaign_id": campaign,
            "user_id": user,
            "hops": self.config.hops,
            "limit": self.config.explain_paths,
            "walk": self.walk,
        }
        df = self._store().run("audience_rule_paths", params)
        if not len(df):
            return []
        return [
            GraphPath(tuple(ids), tuple(labels), tuple(rels), float(w))
            for ids, labels, rels, w in zip(
                df["ids"], df["labels"], df["relations"], df["weight"], strict=True
            )
        ]
