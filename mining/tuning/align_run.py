"""One alignment session, as `mokg lightpair align` runs it: point-wise labels from the builds'
candidates (checked against the world's truth) and imported user feedback, then SFT, pair-wise DPO
and ULMA on a distilled LightPAIR checkpoint's expansion head, each scored on the checkpoint's
held-out seed intents before and after ("Unified Language Model Alignment with Demonstration and
Point-wise Human Preference", arXiv:2312.02554; the methods themselves are in :mod:`.align` and
:mod:`.ulma`).

:func:`run_alignment` takes an :class:`AlignRequest` (checked when built, before any work) and
returns an :class:`AlignOutcome` (the table and what it was computed from); with ``out`` every
method's aligned checkpoint is saved as ``out/<method>``, servable and evaluable like the distilled
one.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from mining.pipeline.builddir import BuildDir

METHODS = ("sft", "dpo", "ulma")
TRAINABLE = ("head", "calibration")


@dataclass(frozen=True)
class AlignRequest:
    """Args: model (a LightPAIR checkpoint dir); builds (the `mokg build` work dirs whose candidates
    get labels); world (whose hidden KG labels them); methods (of :data:`METHODS`); steps, beta, lr
    (None: 0.01 with ``trainable="calibration"``, else 0.001), seed; feedback (imported user labels,
    read when the file exists); out (save each aligned checkpoint as ``out/<method>``); trainable
    (``calibration``: scale, biases and evidence weights only; ``head``: every expansion-head
    parameter); calibrate_share (the share of heads kept out of alignment to re-choose each
    relation's τ_r / K_r on their labels; 0 keeps the distilled thresholds)."""

    model: Path
    builds: tuple[BuildDir, ...]
    world: Path
    feedback: Path
    methods: tuple[str, ...] = METHODS
    steps: int = 200
    beta: float = 0.1
    lr: float | None = None
    seed: int = 0
    out: Path | None = None
    trainable: str = "calibration"
    calibrate_share: float = 0.0

    def __post_init__(self) -> None:
        if not self.methods or set(self.methods) - set(METHODS):
            raise InputError(
                f"--methods takes sft, dpo and/or ulma, comma-separated, not {','.join(self.methods)!r}"
            )
        if self.trainable not in TRAINABLE:
            raise InputError(f"--trainable must be head or calibration, not {self.trainable!r}")
        if not 0.0 <= self.calibrate_share < 1.0:
            raise InputError(f"--calibrate-share must be in [0, 1), not {self.calibrate_share}")

    @property
    def rate(self) -> float:
        """The learning rate used."""
        if self.lr is not None:
            return self.lr
        return 0.01 if self.trainable == "calibration" else 1e-3


@dataclass(frozen=True)
class AlignOutcome:
    """``table``: one row per head (the distilled one, re-calibrated with ``calibrate_share``, then
    each method) and its held-out scores; ``rows`` / ``accepted``: the feedback rows aligned on;
    ``seeds``: held-out seed intents scored; ``aside_rows`` / ``aside_heads``: the rows kept for
    re-calibration; ``evidence``: whether the policy read behavioural evidence; ``saved``: the
    checkpoints written."""

    table: pd.DataFrame
    rows: int
    accepted: int
    seeds: int
    aside_rows: int
    aside_heads: int
    evidence: bool
    saved: list[Path] = field(default_factory=list)


def _feedback_rows(request: AlignRequest, truth: Any, held: set[str]) -> tuple[list[Any], dict[str, Any]]:
    """One label per (head, relation, tail) from the builds and the feedback file (a later source
    wins), none on held-out heads; and the builds' behavioural evidence by head."""
    from mining.lightpair.corpus import norm
    from mining.tuning.align import Feedback, evidence_of_build, feedback_from_truth

    rows: list[Any] = []
    evidence: dict[str, Any] = {}
    for work in request.builds:
        rows += [f for f in feedback_from_truth(work, truth) if norm(f.head) not in held]
        evidence = {**evidence_of_build(work), **evidence}
    if request.feedback.exists():
        text = request.feedback.read_text().splitlines()
        rows += [Feedback(**json.loads(x)) for x in text if x.strip()]
    rows = list({(f.head, f.relation, f.tail): f for f in rows if norm(f.head) not in held}.values())
    return rows, evidence


def run_alignment(request: AlignRequest) -> AlignOutcome:
    """Label, align with every method, score before and after (module doc)."""
    import pandas as pd

    from mining.lightpair import checkpoint
    from mining.lightpair.corpus import norm
    from mining.pipeline.evaluate import TruthKG
    from mining.tuning.align import (
        AlignConfig,
        ExpansionHead,
        ExpansionPolicy,
        _names,
        align,
        calibrate_on_feedback,
        evaluate_heads,
        split_heads,
    )

    net, meta, tails = checkpoint.load(request.model)
    truth = TruthKG.from_world(request.world).triples
    held = {norm(h) for h in meta.held_out}
    rows, evidence = _feedback_rows(request, truth, held)
    if meta.model.evidence and not evidence:
        raise InputError(
            f"{request.model} reads behavioural evidence, but no build in "
            f"{', '.join(str(d.path) for d in request.builds)} was run with --evidence; align with the "
            "checkpoint's own build"
        )
    seeds = sorted(
        (i, n, d) for i, (n, label, d) in _names().items() if label == "Intent" and norm(n) in held
    )
    policy = ExpansionPolicy(net, tails, meta.tails, evidence)
    share = request.calibrate_share
    rows, aside = split_heads(rows, share, request.seed) if share else (rows, [])

    def thresholds_for(head: Any) -> dict[str, float]:
        return {**meta.thresholds, **calibrate_on_feedback(policy, head, aside)} if aside else meta.thresholds

    distilled = ExpansionHead(net)
    table = [
        {"method": "distilled (before)", **evaluate_heads(policy, distilled, seeds, truth, meta.thresholds)}
    ]
    if aside:
        scores = evaluate_heads(policy, distilled, seeds, truth, thresholds_for(distilled))
        table.append({"method": "distilled, re-calibrated", **scores})
    saved = []
    for method in request.methods:
        config = AlignConfig(
            method=method,  # type: ignore[arg-type]
            beta=request.beta,
            steps=request.steps,
            lr=request.rate,
            seed=request.seed,
            trainable=request.trainable,  # type: ignore[arg-type]
        )
        head = align(policy, rows, config)
        chosen = thresholds_for(head)
        table.append({"method": method, **evaluate_heads(policy, head, seeds, truth, chosen)})
        if request.out is not None:
            saved.append(
                save_aligned(
                    request.model, (net, meta, tails), head, request.out / method, config, len(rows), chosen
                )
            )
    return AlignOutcome(
        pd.DataFrame(table),
        rows=len(rows),
        accepted=sum(f.z >= 1 for f in rows),
        seeds=len(seeds),
        aside_rows=len(aside),
        aside_heads=len({f.head for f in aside}),
        evidence=bool(policy.evidence),
        saved=saved,
    )


def save_aligned(
    source: Path,
    loaded: tuple[Any, Any, Any],
    head: Any,
    out: Path,
    config: Any,
    rows: int,
    thresholds: dict[str, float],
) -> Path:
    """Checkpoint ``source`` (``loaded`` as net, meta, tails) with its expansion head replaced by the
    aligned ``head``, served with ``thresholds``; the loaded net itself is not changed (the next
    method starts from the distilled head)."""
    from mining.lightpair import checkpoint

    net, meta, tails = loaded
    aligned = copy.deepcopy(net)
    head.install(aligned)
    saved = replace(
        meta,
        source={**meta.source, "aligned": config.method, "align": asdict(config), "feedback_rows": rows},
        extra={**meta.extra, "distilled_thresholds": meta.thresholds},
        thresholds=thresholds,
    )
    checkpoint.save(out, aligned, saved, tails, (source / "corpus.json").read_text())
    return out
