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
- running the experts' first layers as one wide product (``[H, n·h1]``), then only the
  request's scenario gate and tower, under ``torch.inference_mode``.

The experts are the floor of the cost: their input
passes a ReLU, so nothing past it can be precomputed exactly; at the default widths they are
~64k of the ~69k multiply-adds per candidate (:attr:`FastScorer.macs_per_candidate`).

Memory: ``n_domains × n_items × (d + H)`` float32 for the per-domain item tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from gnn.foundation.adaptation import DomainAdaptiveMultiTask
from gnn.foundation.serve import Artefacts
from graph.errors import InputError


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


class FastScorer:
    """Scores of one request against many candidates, from loaded artefacts (see the module doc).

    ``domains``: the domains whose item tables are built now (default: all); others on first use.
    """

    def __init__(self, art: Artefacts, domains: list[str] | None = None) -> None:
        self.art = art
        model = art.model
        model.eval()
        self.model = model
        d = model.config.dim
        dam = model.dam
        with torch.inference_mode():
            maps, self._bias = _affine_maps(dam)  # [K, 3d, H], [K, H]
            self._a_req, self._a_item, self._a_both = maps[:, :d], maps[:, d : 2 * d], maps[:, 2 * d :]
            experts = [_linears(e) for e in dam.mmoe.experts]
            n_layers = {len(e) for e in experts}
            if len(n_layers) != 1 or len({e[0].out_features for e in experts}) != 1:
                raise InputError("FastScorer needs experts of equal depth and width")
            first = [e[0] for e in experts]
            self._width = first[0].out_features  # every expert's first layer: one wide product
            self._w1 = torch.cat([lin.weight.t() for lin in first], 1).contiguous()  # [H, n·h1]
            self._b1 = torch.cat([lin.bias for lin in first]).clone()
            self._rest = [  # per expert, its later layers (in, out)
                [(lin.weight.t().contiguous(), lin.bias.clone()) for lin in e[1:]] for e in experts
            ]
            gates = [lin for g in dam.mmoe.gates for lin in _linears(g)]  # one Linear per scenario
            self._gates = [(g.weight.detach().clone(), g.bias.detach().unsqueeze(1).clone()) for g in gates]
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
        macs = self._a_both.shape[1] * h + self._w1.numel() + self._gates[0][0].numel()
        macs += sum(w.numel() for layers in self._rest for w, _ in layers)
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

    @torch.inference_mode()
    def logits(self, request: str, domain: str, candidates: np.ndarray | Tensor) -> Tensor:
        """Logits [C] of ``request`` for item rows ``candidates`` [C] shown in ``domain``."""
        row, k, s = self.art.scenario(request, domain)
        cand = torch.as_tensor(candidates, dtype=torch.long)
        m, km = self.model, self._map(k)
        req = torch.tensor([row])
        aspects, _ = m.inputs(req, torch.zeros_like(req))
        r = m.fuse_req(aspects, torch.tensor([k]))[0]  # [d]
        items = self._domain_items(k)
        base = r @ self._a_req[km]  # [H]
        h = torch.index_select(items.proj, 0, cand).add_(base)
        h = h.addmm_(torch.index_select(items.vec, 0, cand), r.unsqueeze(1) * self._a_both[km]).relu_()
        # h [C, H] = relu(A_k [r; i; r ⊙ i] + b_k), the shared representation
        z1 = torch.addmm(self._b1, h, self._w1).relu_()  # [C, n·h1]: every expert's first layer
        wg, bg = self._gates[s]
        # the scenario's gate only, as [n, C] (a softmax over a long contiguous axis is faster)
        gate = torch.softmax(torch.addmm(bg, wg, h.t()), dim=0)
        out: Tensor | None = None
        for e, layers in enumerate(self._rest):
            z = z1[:, e * self._width : (e + 1) * self._width]
            for w, b in layers:
                z = torch.addmm(b, z, w).relu_()
            g = gate[e].unsqueeze(1)  # [C, 1]
            if out is None:
                out = z * g
            else:
                out.addcmul_(z, g)  # Σ_e g_e f_e(h)
        assert out is not None
        tower = self._towers[s]
        for w, b in tower[:-1]:
            out = torch.addmm(b, out, w).relu_()
        w, b = tower[-1]
        return torch.addmm(b, out, w).squeeze(-1)

    def score(
        self, request: str, domain: str, k: int = 20, candidates: np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` of ``candidates`` (default: the domain's items, as :func:`serve.score`) by click
        probability: ``(item id, probability)``, best first."""
        cand = self.art.candidates(domain) if candidates is None else np.asarray(candidates)
        return self.art.top_k(cand, self.logits(request, domain, cand), k)
