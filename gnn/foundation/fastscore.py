"""Fast scoring of saved foundation artefacts: the same scores as :func:`gnn.foundation.serve.score`,
computed with less work per request.

:func:`~gnn.foundation.serve.score` runs the whole :class:`~gnn.foundation.model.SRFoundation`
forward on every candidate: the request's aspects and fusion repeated once per candidate, the
items' text projection and fusion, one ``[C, 3d] × [3d, H]`` domain map, every expert, every
scenario's gate and *every* scenario's tower. :class:`FastScorer` returns the same logits
(up to float32 rounding; the benchmark ``python -m bench.foundation`` checks 1e-5) by

- precomputing, once per domain (at construction), every item's fused vector ``i`` (the fusion
  gate may depend on the domain) and its share of the domain map ``A_k^i i + b_k``: with
  ``A_k = [A_k^r; A_k^i; A_k^{ri}]`` (rows for ``r``, ``i`` and ``r ⊙ i``),
  ``A_k [r; i; r ⊙ i] = A_k^r r + A_k^i i + (diag(r) A_k^{ri}) i``;
- computing the request's fused vector ``r`` and ``A_k^r r`` once per request, and the
  request-specific ``[d, H]`` matrix ``diag(r) A_k^{ri}``, so each candidate costs one
  ``[d] × [d, H]`` product before the experts;
- running every expert, then only the request's scenario gate and tower, under
  ``torch.inference_mode``;
- scoring a **micro-batch** of requests in one call (:meth:`FastScorer.logits_many`): each request's
  own parts (its vector, its share of the domain map, its gate and tower) per request, the experts
  once over all ``Σ C_j`` candidate rows, so their per-call overhead is shared.

The experts are the floor of the cost: their input passes a ReLU, so nothing past it can be
precomputed exactly; at the default widths they are ~64k of the ~69k multiply-adds per candidate
(:attr:`FastScorer.macs_per_candidate`): 1,000 candidates at 2,000 requests/s is ~280 GFLOP/s, more
than two cores give in float32. ``precision="bf16"`` runs the experts (only) in bfloat16 through
oneDNN's fused linear + ReLU, on AMX tiles where the CPU has them; everything before the experts
and the gates, mixture and towers stay float32. ``python -m bench.foundation`` reports its speed,
its logit gap to fp32, the top-20 overlap and the held-out AUC of both.

Memory: ``n_domains × n_items × (d + H)`` float32 for the per-domain item tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from gnn.foundation.adaptation import DomainAdaptiveMultiTask
from gnn.foundation.serve import Artefacts
from graph.errors import InputError
from loaders.precision import cpu_has_fast_bf16, dtype_of, resolve


@dataclass(frozen=True)
class _DomainItems:
    vec: Tensor  # [Ni, d]: fused item vectors in this domain
    proj: Tensor  # [Ni, H]: A_k^i i + b_k


def _linears(seq: nn.Module) -> list[nn.Linear]:
    return [m for m in seq.modules() if isinstance(m, nn.Linear)]


def _affine_maps(dam: DomainAdaptiveMultiTask) -> tuple[Tensor, Tensor]:
    """The domain maps ``A_k = A + Δ_k`` [K, 3d, H] and ``b_k = b + δ_k`` [K, H] (h = ReLU(x A_k + b_k))
    of a :class:`~gnn.foundation.adaptation.DomainAdaptiveMultiTask`; K = 1 without adaptation."""
    a, b = dam.map.weight.detach().t(), dam.map.bias.detach()
    if not dam.adapt:
        return a.unsqueeze(0).clone(), b.unsqueeze(0).clone()
    return (a + dam.delta.detach()).contiguous(), (b + dam.delta_bias.detach()).contiguous()


def _linear_relu(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``relu(x wᵀ + b)`` for ``w`` [out, in]; bf16 through oneDNN's fused linear + ReLU (the bias and
    the ReLU in the product's epilogue: eager bf16 element-wise ops cost more than the product)."""
    if x.dtype == torch.bfloat16 and _FUSED is not None:
        out: Tensor = _FUSED(x, w, b, "relu", [], "")
        return out
    return torch.addmm(b, x, w.t()).relu_()


# oneDNN's fused linear + pointwise (what torch.compile's CPU backend calls); used only where the
# CPU multiplies bf16 natively (oneDNN refuses bf16 on CPUs without AVX-512; eager ops work anywhere)
_FUSED = (
    getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if torch._C._has_mkldnn and cpu_has_fast_bf16()
    else None
)


class FastScorer:
    """Scores of requests against many candidates, from loaded artefacts (see the module doc).

    ``domains``: the domains whose item tables are built now (default: all); others on first use.
    ``precision``: ``fp32`` (the full model's scores within float32 rounding) or ``bf16`` (the
    experts, ~64k of ~69k multiply-adds per candidate, in bfloat16; everything before them and the
    gates, mixture and towers in float32; several times faster on CPUs with AMX or AVX-512 BF16;
    ``python -m bench.foundation`` reports the logit difference, top-20 overlap and AUC change);
    ``auto``: bf16 where the CPU has native bf16 (:mod:`loaders.precision`).
    """

    def __init__(self, art: Artefacts, domains: list[str] | None = None, precision: str = "fp32") -> None:
        self.art = art
        model = art.model
        model.eval()
        self.model = model
        self.precision = resolve(precision)
        dt = dtype_of(self.precision)
        d = model.config.dim
        dam = model.dam
        with torch.inference_mode():
            maps, self._bias = _affine_maps(dam)  # [K, 3d, H], [K, H]
            self._a_req, self._a_item, self._a_both = maps[:, :d], maps[:, d : 2 * d], maps[:, 2 * d :]
            self._experts = [  # per expert, its layers ([out, in], [out]) in the scoring dtype
                [(lin.weight.to(dt).contiguous(), lin.bias.to(dt)) for lin in _linears(e)]
                for e in dam.mmoe.experts
            ]
            gates = [lin for g in dam.mmoe.gates for lin in _linears(g)]  # one Linear per scenario
            self._gates = [(g.weight.detach().t().contiguous(), g.bias.detach().clone()) for g in gates]
            self._towers = [
                [(lin.weight.t().contiguous(), lin.bias.clone()) for lin in _linears(t)]
                for t in dam.towers.towers
            ]
        self._items: dict[int, _DomainItems] = {}
        for name in art.enc.domains if domains is None else domains:
            self._domain_items(self.art.domain_index(name))

    @property
    def macs_per_candidate(self) -> int:
        """Multiply-adds per candidate on this path (the experts dominate: no exact shortcut past their
        ReLUs): the ``r ⊙ i`` share of the domain map, every expert, one gate, one tower."""
        h = self._a_both.shape[2]
        macs = self._a_both.shape[1] * h + self._gates[0][0].numel()
        macs += sum(w.numel() for layers in self._experts for w, _ in layers)
        return int(macs + sum(w.numel() for w, _ in self._towers[0]))

    def _map(self, k: int) -> int:
        return k if self._a_req.shape[0] > 1 else 0

    @torch.inference_mode()
    def _domain_items(self, k: int) -> _DomainItems:
        if k not in self._items:
            m = self.model
            items = torch.arange(len(self.art.enc.item_ids))
            _, aspects = m.inputs(torch.zeros_like(items), items)
            vec = m.fuse_item(aspects, torch.full_like(items, k))
            proj = vec @ self._a_item[self._map(k)] + self._bias[self._map(k)]
            self._items[k] = _DomainItems(vec.contiguous(), proj.contiguous())
        return self._items[k]

    def logits(self, request: str, domain: str, candidates: np.ndarray | Tensor) -> Tensor:
        """Logits [C] of ``request`` for item rows ``candidates`` [C] shown in ``domain``."""
        return self.logits_many([(request, domain)], [candidates])[0]

    @torch.inference_mode()
    def logits_many(
        self, requests: Sequence[tuple[str, str]], candidates: Sequence[np.ndarray | Tensor]
    ) -> list[Tensor]:
        """Logits [C_j] of each ``(request, domain)`` for its item rows ``candidates[j]`` [C_j]: the
        requests' candidates pass the experts as one batch of Σ C_j rows (a server's micro-batch)."""
        if len(requests) != len(candidates):
            raise InputError(f"{len(requests)} requests but {len(candidates)} candidate lists")
        scen = [self.art.scenario(req, dom) for req, dom in requests]  # (row, domain k, scenario s)
        cands = [torch.as_tensor(c, dtype=torch.long) for c in candidates]
        ends = np.cumsum([len(c) for c in cands]).tolist()
        spans = list(zip([0, *ends[:-1]], ends, strict=True))
        m = self.model
        rows, ks = torch.tensor([r for r, _, _ in scen]), torch.tensor([k for _, k, _ in scen])
        aspects, _ = m.inputs(rows, torch.zeros_like(rows))
        r = m.fuse_req(aspects, ks)  # [R, d]: each request's fused vector
        h = torch.empty(ends[-1] if ends else 0, self._a_both.shape[2])  # [N, H], N = Σ C_j
        gate = torch.empty(h.shape[0], len(self._experts))  # [N, n]
        for j, ((_, k, s), cand, (a, b)) in enumerate(zip(scen, cands, spans, strict=True)):
            items, km = self._domain_items(k), self._map(k)
            hj = torch.index_select(items.proj, 0, cand, out=h[a:b]).add_(r[j] @ self._a_req[km])
            hj.addmm_(torch.index_select(items.vec, 0, cand), r[j].unsqueeze(1) * self._a_both[km]).relu_()
            # h_j [C_j, H] = relu(A_k [r; i; r ⊙ i] + b_k), the shared representation
            wg, bg = self._gates[s]
            torch.softmax(torch.addmm(bg, hj, wg), dim=1, out=gate[a:b])  # the scenario's gate only
        x = h.to(self._experts[0][0][0].dtype)
        mixed = torch.zeros(h.shape[0], self._experts[0][-1][0].shape[0])
        for e, layers in enumerate(self._experts):  # each expert a chain of contiguous products
            z = x
            for w, b in layers:
                z = _linear_relu(z, w, b)
            mixed.addcmul_(z.float(), gate[:, e : e + 1])  # Σ_e g_e f_e(h)
        out = []
        for (_, _, s), (a, b) in zip(scen, spans, strict=True):
            t = mixed[a:b]
            tower = self._towers[s]
            for w, bias in tower[:-1]:
                t = torch.addmm(bias, t, w).relu_()
            w, bias = tower[-1]
            out.append(torch.addmm(bias, t, w).squeeze(-1))
        return out

    def sample_logits(
        self, requests: np.ndarray, items: np.ndarray, domains: np.ndarray, batch: int = 64
    ) -> Tensor:
        """Logits [N] of samples given as request ids, item rows and domain names [N] (e.g. a held-out
        split, to compare precisions by AUC): grouped by (request, domain), ``batch`` groups a call."""
        frame = pd.DataFrame({"request": requests, "item": items, "domain": domains})
        groups: list[tuple[tuple[str, str], np.ndarray]] = list(
            frame.groupby(["request", "domain"], sort=False).indices.items()  # type: ignore[arg-type]
        )
        out = torch.empty(len(frame))
        for start in range(0, len(groups), batch):
            part = groups[start : start + batch]
            keys = [(str(key[0]), str(key[1])) for key, _ in part]
            logits = self.logits_many(keys, [frame["item"].to_numpy()[idx] for _, idx in part])
            for (_, idx), lg in zip(part, logits, strict=True):
                out[torch.from_numpy(idx)] = lg
        return out

    def score(
        self, request: str, domain: str, k: int = 20, candidates: np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` of ``candidates`` (default: the domain's items, as :func:`serve.score`) by click
        probability: ``(item id, probability)``, best first."""
        cand = self.art.candidates(domain) if candidates is None else np.asarray(candidates)
        return self.art.top_k(cand, self.logits(request, domain, cand), k)

    def score_many(
        self, requests: Sequence[tuple[str, str]], k: int = 20, candidates: Sequence[np.ndarray] | None = None
    ) -> list[list[tuple[str, float]]]:
        """:meth:`score` of each ``(request, domain)`` in one batch (:meth:`logits_many`)."""
        cands = [self.art.candidates(d) for _, d in requests] if candidates is None else candidates
        logits = self.logits_many(requests, [np.asarray(c) for c in cands])
        return [self.art.top_k(np.asarray(c), lg, k) for c, lg in zip(cands, logits, strict=True)]
