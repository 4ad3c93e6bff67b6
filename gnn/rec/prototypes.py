"""Contrastive prototype learning of PEACE (Prototype lEarning Augmented transferable framework for
Cross-domain rEcommendation; Gao et al., WSDM 2024, arXiv 2312.01916, §"contrastive prototype
learning").

A bank of ``C`` prototypes ``P = [p_1 … p_C]`` (cluster centres of the entity/item space) is
refreshed by k-means over the current (detached) embeddings; each embedding keeps the cluster it
was assigned to, ``c(h)``. Between refreshes the prototypes are parameters and the contrastive
(ProtoNCE-style, as in Li et al. 2021, "Prototypical Contrastive Learning") loss pulls every
L2-normalised embedding ``ĥ`` to its own prototype and away from the others:

    L_proto = − 1/N Σ_n log [ exp(ĥ_n · p̂_{c(n)} / τ) / Σ_{c=1..C} exp(ĥ_n · p̂_c / τ) ]      (E4)

Gradients reach both the embeddings (they become generalisable, cluster-level knowledge that
transfers across domains) and the prototypes. The paper gives no code; k-means as the refresh and
this exact form of the loss are this module's reading of the paper's abstract; equation numbers
E1–E8 are this package's (listed in :mod:`gnn.rec.peace`), not the paper's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def prototype_loss(
    emb: torch.Tensor, prototypes: torch.Tensor, assign: torch.Tensor, tau: float
) -> torch.Tensor:
    """Eq. E4: InfoNCE of each row of ``emb`` against the prototypes, positive = ``assign[n]``."""
    import torch.nn.functional as F

    logits = F.normalize(emb, dim=-1) @ F.normalize(prototypes, dim=-1).T / tau
    return F.cross_entropy(logits, assign)


def kmeans(x: torch.Tensor, k: int, iters: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means (cosine) of the rows of ``x``: ``(centres [k, d], assignment [n])``.

    Seeded k-means++ initialisation; an empty cluster is re-seeded with the point farthest from its
    centre. Runs on detached data.
    """
    import torch
    import torch.nn.functional as F

    x = F.normalize(x.detach(), dim=-1)
    n = x.shape[0]
    k = min(k, n)
    gen = torch.Generator().manual_seed(seed)
    picked = [x[torch.randint(n, (1,), generator=gen)]]
    best = (x @ picked[0].T).squeeze(1)  # each point's best cosine to the centres so far
    for _ in range(1, k):  # k-means++: next centre ∝ (1 − best cosine)
        picked.append(x[torch.multinomial((1 - best).clamp_min(1e-12), 1, generator=gen)])
        best = torch.maximum(best, (x @ picked[-1].T).squeeze(1))
    centres = torch.cat(picked)
    assign = torch.zeros(n, dtype=torch.long)
    for _ in range(iters):
        sim = x @ centres.T
        assign = sim.argmax(dim=1)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        empty = counts == 0
        if empty.any():
            far = sim.max(dim=1).values.argsort()[: int(empty.sum())]
            sums[empty], counts[empty] = x[far], 1
        centres = F.normalize(sums / counts[:, None], dim=-1)
    return centres, assign
