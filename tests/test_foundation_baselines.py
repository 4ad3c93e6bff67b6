"""Multi-domain CTR baselines (SharedBottom, MMoE, PLE, STAR): shapes, gradient isolation, a toy
multi-domain problem, STAR's star topology and partitioned norm, cold-start scenarios, the registry."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from gnn.foundation.baselines import (
    BASELINES,
    STAR,
    BaselineConfig,
    MMoE,
    MMoELayer,
    ScenarioModel,
    ScenarioTowers,
    SharedBottom,
    make_baseline,
)
from gnn.foundation.baselines.star import PartitionedNorm, StarLinear
from graph.errors import InputError

NAMES = sorted(BASELINES)
IN_DIM, N_SCEN = 8, 3
SMALL = BaselineConfig(
    bottom_dims=(32, 16),
    n_experts=3,
    expert_hidden=(32,),
    expert_dim=16,
    tower_dim=8,
    dropout=0.0,
    star_dims=(32, 16),
    star_aux_dims=(8,),
    star_domain_dim=4,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(name: str, n_scenarios: int = N_SCEN) -> ScenarioModel:
    torch.manual_seed(0)
    return make_baseline(name, IN_DIM, n_scenarios, SMALL)


def _toy(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y = [w_s · x > 0] with a different w_s per scenario (w_1 = −w_0: no shared rule fits both)."""
    w = torch.randn(N_SCEN, IN_DIM, generator=torch.Generator().manual_seed(123))
    w[1] = -w[0]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, IN_DIM, generator=g)
    s = torch.randint(0, N_SCEN, (n,), generator=g)
    return x, s, ((x * w[s]).sum(-1) > 0).float()


def _fit_auc(model: ScenarioModel, blind: bool = False, steps: int = 200) -> float:
    x, s, y = _toy(4000, seed=1)
    xt, st, yt = _toy(3000, seed=2)
    if blind:  # no scenario information: everything is scenario 0
        s, st = torch.zeros_like(s), torch.zeros_like(st)
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (256,))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[idx], s[idx]), y[idx])
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    model.eval()
    with torch.no_grad():
        return float(roc_auc_score(yt.numpy(), model(xt, st).numpy()))


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_own_tower_gradients(name: str) -> None:
    model = _model(name)
    x, s = torch.randn(64, IN_DIM), torch.arange(64) % 2  # scenario 2 absent from the batch
    out = model(x, s)
    assert out.shape == (64,) and torch.isfinite(out).all()
    out.sum().backward()

    def grads(params: list[torch.Tensor]) -> float:
        return sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)

    if isinstance(model, STAR):  # per-domain parameters are rows of stacked tensors
        stacked = [model.norm.gamma_d, model.norm.beta_d, model.domain_emb.weight]
        stacked += [t for layer in model.star_layers() for t in (layer.weight_d, layer.bias_d)]
        for p in stacked:
            assert p.grad is not None and float(p.grad[2].abs().sum()) == 0.0
        first = model.star_layers()[0].weight_d.grad
        assert first is not None and float(first[0].abs().sum()) > 0
        return
    assert isinstance(model.towers, ScenarioTowers)
    towers = model.towers.towers
    assert grads(list(towers[2].parameters())) == 0.0
    assert grads(list(towers[0].parameters())) > 0 and grads(list(towers[1].parameters())) > 0
    if isinstance(model, MMoE):
        assert grads(list(model.mmoe.gates[2].parameters())) == 0.0


def test_input_checks() -> None:
    model = _model("mmoe")
    with pytest.raises(InputError, match="expected x"):
        model(torch.randn(4, IN_DIM + 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(InputError, match="long"):
        model(torch.randn(4, IN_DIM), torch.zeros(4))
    with pytest.raises(InputError, match=">= 1"):
        BaselineConfig(n_experts=0)


@pytest.mark.parametrize("name", NAMES)
def test_learns_scenario_specific_rules(name: str) -> None:
    assert _fit_auc(_model(name)) > 0.85


def test_scenario_blind_model_does_worse() -> None:
    torch.manual_seed(0)
    blind = _fit_auc(SharedBottom(IN_DIM, 1, SMALL), blind=True)
    aware = _fit_auc(_model("shared_bottom"))
    assert blind < 0.75 and aware > blind + 0.15, (blind, aware)


def test_mmoe_layer_all_tasks_and_gathered() -> None:
    torch.manual_seed(0)
    layer = MMoELayer(IN_DIM, n_experts=4, expert_dims=[16, 8], n_tasks=3)
    x, task = torch.randn(10, IN_DIM), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    every = layer(x)
    assert every.shape == (3, 10, 8)
    assert torch.allclose(layer(x, task), every[task, torch.arange(10)], atol=1e-6)
    assert torch.allclose(layer.gate_weights(x).sum(-1), torch.ones(3, 10))
    layer.add_tasks(2)
    assert layer.n_tasks == 5 and layer(x).shape == (5, 10, 8)


def test_star_effective_weight_is_elementwise_product() -> None:
    torch.manual_seed(0)
    layer = StarLinear(5, 4, n_domains=3)
    with torch.no_grad():
        layer.weight_d.normal_()
        layer.bias_d.normal_()
    h, d = torch.randn(6, 5), torch.tensor([0, 1, 2, 2, 1, 0])
    for dom in range(3):
        w_eff = layer.weight_d[dom] * layer.weight
        assert torch.equal(layer.effective_weight(dom), w_eff)
        rows = d == dom
        expected = h[rows] @ w_eff + layer.bias + layer.bias_d[dom]
        assert torch.allclose(layer(h, d)[rows], expected, atol=1e-5)


def test_partitioned_norm_uses_domain_parameters_and_statistics() -> None:
    pn = PartitionedNorm(4, n_domains=2, momentum=1.0)
    z = torch.cat([torch.randn(50, 4) + 5.0, 3.0 * torch.randn(50, 4) - 5.0])
    d = torch.cat([torch.zeros(50, dtype=torch.long), torch.ones(50, dtype=torch.long)])
    out = pn(z, d)  # training: each domain normalised by its own batch moments
    assert torch.allclose(out[:50].mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(out[50:].std(0, unbiased=False), torch.ones(4), atol=1e-3)
    assert (pn.running_mean[0] > 4).all() and (pn.running_mean[1] < -4).all()  # momentum 1: the batch's
    pn.eval()
    before = pn(z, d).detach()
    with torch.no_grad():
        pn.gamma_d[1].fill_(2.0)
        pn.beta_d[1].fill_(3.0)
    after = pn(z, d).detach()
    assert torch.equal(after[:50], before[:50])  # domain 0 untouched
    assert torch.allclose(after[50:], 2.0 * before[50:] + 3.0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_add_scenarios_gives_a_fresh_working_tower(name: str) -> None:
    model = _model(name)
    x, s = torch.randn(32, IN_DIM), torch.arange(32) % N_SCEN
    model.train()
    model(x, s)  # fills STAR's running moments
    model.eval()
    with torch.no_grad():
        old = model(x, s)
    assert list(model.add_scenarios(1)) == [N_SCEN]
    assert model.n_scenarios == N_SCEN + 1
    with torch.no_grad():
        assert torch.allclose(model(x, s), old, atol=1e-6)
    model.train()
    new = torch.full((32,), N_SCEN)
    out = model(x, new)
    assert out.shape == (32,) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(InputError):
        model.add_scenarios(0)


def test_registry_and_unknown_name() -> None:
    assert set(BASELINES) == {"shared_bottom", "mmoe", "ple", "star"}
    for name in NAMES:
        assert isinstance(make_baseline(name, IN_DIM, N_SCEN), BASELINES[name])
    with pytest.raises(InputError, match="mmoe, ple, shared_bottom, star"):
        make_baseline("dcn", IN_DIM, N_SCEN)
