"""Mined triples against the world's ground-truth KG: precision, recall and F1 per relation, and
entity-resolution accuracy (the measures of PAIR's evaluation: Gan et al., "Making Large Language
Models Better Knowledge Miners for Online Marketing with Progressive Prompting Augmentation",
arXiv 2312.05276).

Truth is ``hidden/kg/*.parquet`` (evaluator-only) plus the category tree (``SUBCATEGORY_OF``,
visible). ``CO_OCCURS_WITH`` is symmetric: a mined (a, b) is right if (a, b) or (b, a) is true.

Recall needs a fixed set of heads, the same for every variant compared: the *reachable heads*
are the seeds plus the true tails of the seeds (what ``rounds ≥ 2`` can reach). Recall counts
the true triples whose head is reachable; precision counts every mined triple.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from graph.errors import InputError
from graph.schema import SCHEMA
from graph.store import GraphStore
from loaders.world.layout import WorldDir
from mining.pipeline.builddir import BuildDir
from mining.pipeline.resolve import Resolver
from mining.pipeline.types import Entity

Triple = tuple[str, str, str]  # (relation, head id, tail id)
SYMMETRIC = {"CO_OCCURS_WITH"}


@dataclass
class TruthKG:
    triples: set[Triple] = field(default_factory=set)

    @classmethod
    def from_world(cls, world_dir: Path) -> TruthKG:
        world = WorldDir(world_dir)
        folder = world.hidden_for_evaluation("kg")
        files = sorted(folder.glob("*.parquet")) if folder.exists() else []
        if not files:
            raise InputError(
                f"{world_dir} has no hidden/kg/*.parquet truth to evaluate against; "
                "pass the world directory `mokg world generate` wrote"
            )
        files.append(world.visible("edges", "Category__SUBCATEGORY_OF__Category.parquet"))
        truth = cls()
        for path in files:
            rel = path.stem.split("__")[1]
            frame = pd.read_parquet(path, columns=["head", "tail"])
            truth.triples |= {(rel, h, t) for h, t in zip(frame["head"], frame["tail"], strict=True)}
        truth.triples |= {(r, t, h) for r, h, t in truth.triples if r in SYMMETRIC}
        return truth

    def reachable_heads(self, seeds: Iterable[str]) -> set[str]:
        heads = set(seeds)
        return heads | {t for _, h, t in self.triples if h in heads}

    def relations(self) -> list[str]:
        return sorted({r for r, _, _ in self.triples})


def prf(mined: set[Triple], truth: TruthKG, heads: set[str]) -> pd.DataFrame:
    """Precision, recall, F1 per relation and micro-averaged over all (last row, ``all``)."""
    wanted = {x for x in truth.triples if x[1] in heads}
    rows = []
    for rel in [*truth.relations(), "all"]:
        m = {x for x in mined if rel in ("all", x[0])}
        t = {x for x in wanted if rel in ("all", x[0])}
        tp = len(m & truth.triples)
        p = tp / len(m) if m else 0.0
        r = len(m & t) / len(t) if t else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rows.append(
            {"relation": rel, "mined": len(m), "truth": len(t), "precision": p, "recall": r, "f1": f1}
        )
    return pd.DataFrame(rows)


def mined_by_run(store: GraphStore, run_id: str) -> set[Triple]:
    """Every mined-relation edge a run wrote, as (relation, head id, tail id)."""
    out: set[Triple] = set()
    for rel in SCHEMA.mined_relations():
        for head, tail in rel.endpoints:
            edges = store.edge_table((head, rel.name, tail), ["run_id"])
            if len(edges):
                mine = edges[edges["run_id"] == run_id]
                out |= {(rel.name, h, t) for h, t in zip(mine["head"], mine["tail"], strict=True)}
    return out


def accepted_of(build: BuildDir) -> set[Triple]:
    """The accepted triples a job recorded in its ``candidates.jsonl``."""
    return {(r["relation"], r["head"], r["tail"]) for r in build.candidate_rows() if r["accepted"]}


def er_accuracy(
    resolver: Resolver, labels: Sequence[str] = ("Intent", "Category"), seed: int = 0
) -> dict[str, float]:
    """Share of surface variants (the teacher's, ``mining.teacher.variants``) resolved to the entity
    they were made from, one variant per entity, plus the share resolved per method."""
    from mining.teacher.variants import surface_variant

    gen = random.Random(seed)
    entities: list[Entity] = [e for label in labels for e in resolver.entities(label)]
    variants = [surface_variant(e.name, gen) for e in entities]
    right, methods = 0, {"normalised": 0, "fuzzy": 0, "embedding": 0, "unresolved": 0}
    for label in labels:
        idx = [i for i, e in enumerate(entities) if e.type == label]
        for i, res in zip(idx, resolver.resolve_many([variants[i] for i in idx], label), strict=True):
            methods[res.method] += 1
            right += res.entity is not None and res.entity.id == entities[i].id
    n = max(1, len(entities))
    return {"variants": len(entities), "accuracy": right / n, **{k: v / n for k, v in methods.items()}}
