"""The comparison behind ``mokg eval rec``: PEACE vs baselines vs ablations, and the graph effect.

For every split and seed, every model in :data:`MODELS` is fitted on the same
:class:`~gnn.rec.data.RecData` and ranked by the same evaluator (:mod:`gnn.rec.evaluate`) on each
target domain; the cold_start split is scored on its cold domain only. PEACE runs once per KG arm
(e.g. no KG, the ground-truth KG, a mined KG); its ablations and the baselines run on the last arm
(the baselines read no KG: their ``kg`` is ``n/a``). On the cold_start split the cold domain is
the only target, every other domain a source; on the cold_items split (one-domain data such as
MovieLens) each target ``D``'s held-out items are the target ``D:cold`` and ``D`` the source. Rows
are aggregated as mean ± std over seeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from gnn.rec.baselines import BPRMF, EMCDR, BaselineConfig, MostPopular
from gnn.rec.data import COLD_SUFFIX, RecData, RecDataConfig, attach_kg, load_rec_data
from gnn.rec.evaluate import Recommender, evaluate_domain
from gnn.rec.lightgcn import LightGCNRec
from gnn.rec.metrics import METRICS
from gnn.rec.peace import Peace, PeaceConfig

if TYPE_CHECKING:
    from graph.store import GraphStore
    from loaders.features import TextEncoder
    from loaders.pyg import SplitKind

Factory = Callable[[PeaceConfig, BaselineConfig], Recommender]
MODELS: dict[str, Factory] = {
    "PEACE": lambda p, b: Peace(p),
    "PEACE w/o prototypes": lambda p, b: Peace(replace(p, use_prototypes=False), "PEACE w/o prototypes"),
    "PEACE w/o proto-attention": lambda p, b: Peace(
        replace(p, use_proto_attention=False), "PEACE w/o proto-attention"
    ),
    "PEACE w/o entity graph": lambda p, b: Peace(
        replace(p, use_entity_graph=False), "PEACE w/o entity graph"
    ),
    "PEACE single-interest": lambda p, b: Peace(replace(p, single_interest=True), "PEACE single-interest"),
    "MostPop": lambda p, b: MostPopular(),
    "BPR-MF": lambda p, b: BPRMF(b),
    "LightGCN": lambda p, b: LightGCNRec(b),
    "LightGCN-joint": lambda p, b: LightGCNRec(b, joint=True),
    "EMCDR": lambda p, b: EMCDR(b),
}
KG_MODELS = ("PEACE",)  # run once per KG arm


@dataclass(frozen=True)
class RecEvalConfig:
    """What ``mokg eval rec`` compares.

    Args:
        splits: splits of the interactions; seeds: one run per seed (models and the cold_start split).
        targets: target domains (the rest are PEACE's / EMCDR's sources); cold_domain: held out by
            the cold_start split; cold_share: items held out by the cold_items split. models: names
            from :data:`MODELS`. features: MiniLM features.
        peace, baseline: model configs (their ``seed`` is replaced by each run's seed).
        max_test_users: score a seeded sample of this many test users per domain (None = all).
    """

    splits: tuple[SplitKind, ...] = ("leave_last_out", "temporal", "cold_start")
    seeds: tuple[int, ...] = (0, 1, 2)
    targets: tuple[str, ...] = ("finance", "travel", "health")
    cold_domain: str = "health"
    cold_share: float = 0.2
    models: tuple[str, ...] = tuple(MODELS)
    features: bool = True
    peace: PeaceConfig = field(default_factory=PeaceConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    max_test_users: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_comparison(
    store: GraphStore,
    config: RecEvalConfig,
    kg_arms: Mapping[str, GraphStore | None],
    *,
    encoder: TextEncoder | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> pd.DataFrame:
    """One row per (split, seed, model, KG arm, domain) with the metrics and the fit seconds.

    ``kg_arms`` maps an arm's name to the store its knowledge edges are read from (None: no KG).
    """
    unknown = [m for m in config.models if m not in MODELS]
    if unknown:
        from graph.errors import InputError

        raise InputError(f"unknown models {unknown}; choose from {', '.join(MODELS)}")
    rows: list[dict[str, Any]] = []
    last_arm = list(kg_arms)[-1]
    for split in config.splits:
        for seed in config.seeds:
            dcfg = RecDataConfig(
                split=split,
                cold_domain=config.cold_domain,
                cold_share=config.cold_share,
                kg=False,
                features=config.features,
                seed=seed if split in ("cold_start", "cold_items") else 0,
            )
            base = load_rec_data(store, dcfg, encoder=encoder)
            arms = {name: _with_kg(base, name, kg) for name, kg in kg_arms.items()}
            domains = _targets(split, config)
            for name in config.models:
                for arm in kg_arms if name in KG_MODELS else [last_arm]:
                    rows += _run_one(name, arms[arm], arm, config, split, seed, domains, log)
    return pd.DataFrame(rows)


def _targets(split: str, config: RecEvalConfig) -> list[str]:
    """cold_start: the cold domain is the only target (every other domain is a source);
    cold_items: each target's held-out items; otherwise the targets."""
    if split == "cold_start":
        return [config.cold_domain]
    if split == "cold_items":
        return [f"{t}{COLD_SUFFIX}" for t in config.targets]
    return list(config.targets)


def _with_kg(base: RecData, name: str, kg: GraphStore | None) -> RecData:
    return base if kg is None else attach_kg(base, kg, name)


def _run_one(
    name: str,
    data: RecData,
    arm: str,
    config: RecEvalConfig,
    split: str,
    seed: int,
    domains: Sequence[str],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    model = MODELS[name](replace(config.peace, seed=seed), replace(config.baseline, seed=seed))
    start = time.perf_counter()
    model.fit(data, list(domains))
    fit_s = time.perf_counter() - start
    out = []
    for domain in domains:
        m = evaluate_domain(model, data, domain, max_users=config.max_test_users, seed=seed)
        if m["users"]:
            kg = arm if name.startswith("PEACE") else "n/a"
            out.append(
                {"split": split, "seed": seed, "model": name, "kg": kg, "domain": domain}
                | m
                | {"fit_s": fit_s}
            )
    log(
        f"{split} seed={seed} {name} kg={arm}: fit {fit_s:.1f}s "
        + " ".join(f"{r['domain']} NDCG@10={r['NDCG@10']:.3f}" for r in out)
    )
    return out


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (split, domain, model, kg); columns ``METRIC`` and ``METRIC_std``."""
    keys = ["split", "domain", "model", "kg"]
    grouped = raw.groupby(keys, sort=False)
    mean = grouped[[*METRICS, "users", "fit_s"]].mean()
    std = grouped[list(METRICS)].std(ddof=0).add_suffix("_std")
    return mean.join(std).join(grouped.size().rename("seeds")).reset_index()


def markdown_table(summary: pd.DataFrame, metrics: Sequence[str] = METRICS) -> str:
    """The summary as a Markdown table (mean ± std), the best mean per (split, domain) in bold."""
    head = ["split", "domain", "model", "KG", *metrics, "users"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (_split, _dom), group in summary.groupby(["split", "domain"], sort=False):
        best = {m: group[m].max() for m in metrics}
        for _, r in group.iterrows():
            cells = [f"{r[m]:.3f} ± {r[m + '_std']:.3f}" for m in metrics]
            cells = [f"**{c}**" if r[m] == best[m] else c for c, m in zip(cells, metrics, strict=True)]
            lines.append(
                f"| {r['split']} | {r['domain']} | {r['model']} | {r['kg']} | "
                + " | ".join(cells)
                + f" | {int(r['users'])} |"
            )
    return "\n".join(lines)
