"""ULMA / point-wise DPO: alignment on point-wise feedback.

Paper: Cai et al., "ULMA: Unified Language Model Alignment with Human Demonstration and Point-wise
Preference", arXiv 2312.02554.

For a prompt x and response y (here x = (head, relation), y = a tail; or a triple and its
verdict), with log-probabilities that are the *mean* over response tokens (one "token" for our
policies: π(t | h, r) = softmax over the candidate tails, or the judge's Bernoulli):

    r̂(x, y) = log πθ(y | x) − log π_ref(y | x)        (π_ref: a frozen copy, dropout off)
    c = β · log Z(x), treated as a constant (0 by default); β = 0.1 in the official code.

- point-wise DPO, binary labels z ∈ {0, 1}:   L = BCE-with-logits(β·r̂ + c, z)
- point-wise DPO, continuous labels z ∈ [0, 1]: L = mean (z − β·r̂ − c)²
- ULMA (unified): rows with z = 1 (demonstrations) get SFT, mean −log πθ(y | x) (no reference,
  no β); the other rows get −log σ(−(β·r̂ + c)) (binary) or (z − β·r̂ − c)² (continuous). Each
  term is a mean over its own rows and the two are added; a class absent from a batch adds 0.
- pair-wise DPO (the baseline, Rafailov et al. 2023) from the same labels: every (positive,
  negative) pair of one prompt gives −log σ(β·(r̂_w − r̂_l)).

Binary point-wise DPO equals TRL's BCO with its running reward shift fixed at 0; TRL has no
continuous-label or ULMA split loss, so these are written here.
"""

from __future__ import annotations

import torch
from torch import nn


def reward(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """r̂ = log πθ(y|x) − log π_ref(y|x); the reference never receives a gradient."""
    return logp - ref_logp.detach()


def _mean_or_zero(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.mean() if values.numel() else like.sum() * 0.0


def pointwise_dpo(
    logp: torch.Tensor,
    ref_logp: torch.Tensor,
    z: torch.Tensor,
    beta: float = 0.1,
    c: float = 0.0,
    continuous: bool = False,
) -> torch.Tensor:
    """Point-wise DPO: BCE(β·r̂ + c, z) for binary z, mean (z − β·r̂ − c)² for continuous z."""
    score = beta * reward(logp, ref_logp) + c
    if continuous:
        return (z - score).pow(2).mean()
    return nn.functional.binary_cross_entropy_with_logits(score, z.to(score.dtype))


def ulma(
    logp: torch.Tensor,
    ref_logp: torch.Tensor,
    z: torch.Tensor,
    beta: float = 0.1,
    c: float = 0.0,
    continuous: bool = False,
) -> torch.Tensor:
    """ULMA: SFT (mean −log πθ) on rows with z = 1, the point-wise preference term on the rest."""
    positive = z >= 1.0
    sft = _mean_or_zero(-logp[positive], logp)
    rest = ~positive
    score = beta * reward(logp[rest], ref_logp[rest]) + c
    if continuous:
        pref = _mean_or_zero((z[rest] - score).pow(2), logp)
    else:
        pref = _mean_or_zero(-nn.functional.logsigmoid(-score), logp)
    return sft + pref


def sft(logp: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SFT-only: mean −log πθ(y|x) over the positive rows (0 if none)."""
    return _mean_or_zero(-logp[z >= 1.0], logp)


def pairwise_dpo(
    logp: torch.Tensor, ref_logp: torch.Tensor, z: torch.Tensor, prompt: torch.Tensor, beta: float = 0.1
) -> torch.Tensor:
    """Pair-wise DPO over every (z = 1, z = 0) pair sharing a ``prompt`` id (0 if there are none)."""
    r = reward(logp, ref_logp)
    pos, neg = z >= 1.0, z <= 0.0
    same = prompt.unsqueeze(1) == prompt.unsqueeze(0)
    pairs = same & pos.unsqueeze(1) & neg.unsqueeze(0)  # [w, l]
    margins = (r.unsqueeze(1) - r.unsqueeze(0))[pairs]
    return _mean_or_zero(-nn.functional.logsigmoid(beta * margins), logp)
