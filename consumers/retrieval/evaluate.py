"""Retrieval metrics through ``ir-measures`` (pytrec_eval, i.e. trec_eval's definitions).

``ranx`` was the first choice; it pulls numba (a JIT compile on first use), ir_datasets, fastparquet
and seaborn into the environment, so the lighter ``ir-measures`` computes the same measures here.

Measures (mean over the queries of the qrels; a query the run leaves out scores 0):

- ``Recall@50``, ``Recall@100``: share of the relevant items (grade ≥ 1) in the top 50 / 100;
- ``NDCG@10``, ``NDCG@50``: trec_eval's nDCG with *linear* gains (gain = the grade, so a grade-2 item
  is worth twice a grade-1 item) and a log2 discount;
- ``MRR``: reciprocal rank of the first relevant item (grade ≥ 1), no cut-off.

:func:`recall_curve` gives Recall@K at the cut-offs of :data:`CURVE_KS` (the figure of
``docs/retrieval.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ir_measures
from ir_measures import RR, R, nDCG

MEASURES = {"Recall@50": R @ 50, "Recall@100": R @ 100, "NDCG@10": nDCG @ 10, "NDCG@50": nDCG @ 50, "MRR": RR}
CURVE_KS = (1, 2, 5, 10, 20, 50, 100)
Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """The MEASURES of ``run`` ({query: {item: score}}) against ``qrels`` ({query: {item: grade}})."""
    found = _aggregate(list(MEASURES.values()), run, qrels)
    return {name: found[m] for name, m in MEASURES.items()}


def recall_curve(run: Run, qrels: Qrels, ks: tuple[int, ...] = CURVE_KS) -> dict[int, float]:
    """Recall@K (grade ≥ 1 relevant) of ``run`` for each K in ``ks``, mean over the queries of ``qrels``."""
    found = _aggregate([R @ k for k in ks], run, qrels)
    return {k: found[R @ k] for k in ks}


def _aggregate(measures: list[Any], run: Run, qrels: Qrels) -> dict[Any, float]:
    """measure → mean over the queries of ``qrels`` (NaN without qrels; 0 when the run answers none)."""
    if not qrels:
        return dict.fromkeys(measures, float("nan"))
    qrels_ = {q: {i: int(r) for i, r in rel.items()} for q, rel in qrels.items()}
    run_ = {q: {i: float(s) for i, s in run[q].items()} for q in qrels if run.get(q)}
    if not run_:
        return dict.fromkeys(measures, 0.0)
    found = ir_measures.calc_aggregate(measures, qrels_, run_)
    return {m: float(found.get(m, 0.0)) for m in measures}
