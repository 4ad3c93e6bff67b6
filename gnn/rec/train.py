"""Jobs over a store: train PEACE and save its serving artefacts; the short demo run.

:func:`train_peace` is what ``mokg train peace`` calls; :func:`run_demo_peace` is the short PEACE
part of ``mokg demo`` (one split, one seed, PEACE against two baselines, artefacts saved).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gnn import distributed
from gnn.rec import serve
from gnn.rec.data import RecData, RecDataConfig, attach_kg, load_rec_data
from gnn.rec.peace import Peace, PeaceConfig
from gnn.rec.serve import export_artefacts
from graph import files
from graph.errors import InputError

if TYPE_CHECKING:
    from graph.store import GraphStore
    from loaders.features import TextEncoder

DEFAULT_TARGETS = ("finance", "travel", "health")


def train_peace(
    store: GraphStore | None,
    data_config: RecDataConfig,
    config: PeaceConfig,
    targets: Sequence[str],
    out: Path,
    *,
    kg: tuple[str, GraphStore | None] | None = None,
    encoder: TextEncoder | None = None,
) -> tuple[Peace, RecData, Path]:
    """Load the graph, train PEACE (pre-train on the non-target domains, fine-tune per target),
    save the artefacts to ``out``. ``kg`` = (arm name, store to read the KG from; None = no KG);
    without it the store's own knowledge edges are used as ``data_config.kg`` says. Under torchrun
    (:mod:`gnn.distributed`) only rank 0 reads ``store`` and writes ``out``; the others may pass
    None for the store they do not open."""
    if distributed.is_main():  # several processes (gnn.distributed): rank 0 reads and writes
        files.check_folder(out, serve.claim)  # refuse before the (long) training, not after
    data = distributed.from_main(lambda: _load(store, data_config, kg, encoder))
    for t in targets:
        data.domain_index(t)  # a clear error for an unknown domain before training
    model = Peace(config)
    start = time.perf_counter()
    model.fit(data, list(targets))
    seconds = time.perf_counter() - start
    extra = {
        "targets": list(targets),
        "fit_seconds": round(seconds, 2),
        "losses": model.losses,
        "data_config": data_config.__dict__,
    }
    distributed.on_main(lambda: export_artefacts(model, data, out, extra))
    return model, data, out


def _load(
    store: GraphStore | None,
    data_config: RecDataConfig,
    kg: tuple[str, GraphStore | None] | None,
    encoder: TextEncoder | None,
) -> RecData:
    if store is None:
        raise InputError("train_peace needs the store to read the graph from (rank 0)")
    data = load_rec_data(store, data_config, encoder=encoder)
    if kg is not None:
        name, kg_store = kg
        data = data.without_kg() if kg_store is None else attach_kg(data, kg_store, name)
    return data


def run_demo_peace(store: GraphStore, out_dir: Path, *, encoder: TextEncoder | None = None) -> dict[str, Any]:
    """The short PEACE run of ``mokg demo`` (well under a minute on the demo world): train PEACE on
    the leave-last-out split with the store's KG (if any), save artefacts to ``out_dir/peace``,
    compare with MostPop and LightGCN-joint on the target domains, write ``out_dir/peace-demo.json``
    and return that summary."""
    import torch

    from gnn.rec.baselines import BaselineConfig, MostPopular
    from gnn.rec.evaluate import Recommender, evaluate_domain
    from gnn.rec.lightgcn import LightGCNRec

    torch.set_num_threads(1)
    targets = [t for t in DEFAULT_TARGETS]
    cfg = replace(PeaceConfig(), pretrain_epochs=4, finetune_epochs=4)
    model, data, art = train_peace(store, RecDataConfig(), cfg, targets, out_dir / "peace", encoder=encoder)
    others: list[Recommender] = [MostPopular(), LightGCNRec(replace(BaselineConfig(), epochs=20), joint=True)]
    for other in others:
        other.fit(data, targets)
    table = {
        m.name: {t: {k: round(v, 4) for k, v in evaluate_domain(m, data, t).items()} for t in targets}
        for m in [model, *others]
    }
    summary = {
        "split": "leave_last_out",
        "seed": cfg.seed,
        "artefacts": str(art),
        "ndcg@10": {name: {t: row[t]["NDCG@10"] for t in targets} for name, row in table.items()},
        "metrics": table,
    }
    files.write_text(out_dir / "peace-demo.json", json.dumps(summary, indent=2))
    return summary
