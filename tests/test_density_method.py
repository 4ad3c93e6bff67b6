"""The training-free diffusion density estimator (arXiv:2310.14458): schedule, score estimator,
ODE, likelihood and generator on tiny data sets (float64 where accuracy is checked)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor

from consumers.density.config import DensityConfig
from consumers.density.likelihood import kde_log_prob, log_prob
from consumers.density.model import fit
from consumers.density.ode import flow, sample, time_grid, velocity
from consumers.density.schedule import Schedule
from consumers.density.score import score, score_divergence, weights
from graph.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _normal(n: int, d: int, seed: int) -> Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _mixture(n: int, d: int, seed: int, spread: float = 0.5) -> Tensor:
    """Two equal Gaussian modes at ±1.5 on the first axis, std ``spread``: [2n, d]."""
    centre = torch.zeros(d, dtype=torch.float64)
    centre[0] = 1.5
    noise = spread * _normal(2 * n, d, seed)
    return torch.cat([noise[:n] - centre, noise[n:] + centre])


def test_schedule_end_points_and_sde_coefficients() -> None:
    s, h = Schedule(1e-4), 1e-6
    assert s.alpha(0.0) == 1.0 and s.beta2(0.0) == pytest.approx(1e-4)
    assert s.alpha(1.0) == pytest.approx(1e-4) and s.beta2(1.0) == pytest.approx(1.0)
    for t in (0.1, 0.5, 0.9):
        dlog_alpha = (math.log(s.alpha(t + h)) - math.log(s.alpha(t - h))) / (2 * h)
        dbeta2 = (s.beta2(t + h) - s.beta2(t - h)) / (2 * h)
        assert s.drift(t) == pytest.approx(dlog_alpha, rel=1e-6)
        assert s.diffusion2(t) == pytest.approx(dbeta2 - 2 * dlog_alpha * s.beta2(t), rel=1e-6)


@pytest.mark.parametrize("t", [0.0, 0.01, 0.5, 1.0])
def test_one_data_point_gives_the_exact_gaussian_score(t: float) -> None:
    s, x, z = Schedule(1e-4), _normal(1, 3, 0), _normal(5, 3, 1)
    exact = (s.alpha(t) * x - z) / s.beta2(t)  # score of N(α_t x, β_t² I)
    torch.testing.assert_close(score(z, t, x, s), exact)
    torch.testing.assert_close(score_divergence(z, t, x, s), torch.full((5,), -3 / s.beta2(t)).double())


def test_weights_stay_finite_far_from_the_data_at_t0() -> None:
    s, x = Schedule(1e-4), 1e3 + _normal(50, 2, 0).float()  # logits of order 1e10 in float32
    w = weights(torch.tensor([[-1e3, 0.0], [1e3, 1e3]]), 0.0, x, s)
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w.sum(1), torch.ones(2))
    assert torch.isfinite(score(torch.tensor([[-1e3, 0.0]]), 0.0, x, s)).all()


def test_many_points_approach_the_score_of_the_diffused_gaussian() -> None:
    s, t, mu, sigma = Schedule(1e-4), 0.8, torch.tensor([1.0, -2.0]).double(), 0.7
    x = mu + sigma * _normal(20_000, 2, 0)
    z = s.alpha(t) * mu + _normal(20, 2, 1)
    exact = (s.alpha(t) * mu - z) / (s.alpha(t) ** 2 * sigma**2 + s.beta2(t))  # N(αμ, (α²σ² + β²) I)
    error = (score(z, t, x, s) - exact).norm(dim=1) / exact.norm(dim=1)
    assert error.max() < 0.05


@pytest.mark.parametrize("t", [0.001, 0.3, 0.9])
def test_divergence_is_the_trace_of_the_jacobian(t: float) -> None:
    s, x = Schedule(1e-2), _normal(30, 3, 0)
    z = _normal(6, 3, 1).requires_grad_()
    out = score(z, t, x, s)  # row k depends on z_k only, so ∂Σ_k out[k, i] / ∂z = the Jacobians' row i
    rows = [torch.autograd.grad(out[:, i].sum(), z, retain_graph=True)[0][:, i] for i in range(3)]
    torch.testing.assert_close(score_divergence(z, t, x, s), torch.stack(rows).sum(0))


def test_velocity_is_the_probability_flow_drift() -> None:
    s, x, z = Schedule(1e-4), _normal(40, 2, 0), _normal(8, 2, 1)
    for t in (0.0, 0.4, 1.0):
        v, div = velocity(z, t, x, s)
        expected = s.drift(t) * z - 0.5 * s.diffusion2(t) * score(z, t, x, s)
        torch.testing.assert_close(v, expected, rtol=1e-6, atol=1e-6)
        expected_div = 2 * s.drift(t) - 0.5 * s.diffusion2(t) * score_divergence(z, t, x, s)
        torch.testing.assert_close(div, expected_div, rtol=1e-6, atol=1e-4)


def test_euler_approaches_heun_as_steps_grow() -> None:
    s, data, noise = Schedule(1e-2), _mixture(50, 1, 0), _normal(40, 1, 1)
    gaps = []
    for steps in (25, 100, 400):
        euler = sample(noise, data, s, steps=steps, solver="euler")
        heun = sample(noise, data, s, steps=steps, solver="heun")
        gaps.append(float((euler - heun).abs().mean()))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.25 * gaps[0]


def test_backwards_then_forwards_returns_to_the_noise() -> None:
    s, data, noise = Schedule(1e-2), _mixture(50, 2, 0), _normal(30, 2, 1)
    times = time_grid(s, 200, "log")
    samples, _ = flow(noise, data, s, times[::-1], solver="heun")
    back, _ = flow(samples, data, s, times, solver="heun")
    torch.testing.assert_close(back, noise, rtol=0, atol=1e-3)
    assert time_grid(s, 10, "log")[0] == 0.0 and time_grid(s, 10, "log")[-1] == 1.0


def test_points_do_not_depend_on_the_chunk() -> None:
    s, data, noise = Schedule(1e-4), _mixture(150, 2, 0), _normal(23, 2, 1)
    small = sample(noise, data, s, steps=20, batch_size=50, chunk=7, seed=3)
    whole = sample(noise, data, s, steps=20, batch_size=50, chunk=1000, seed=3)
    torch.testing.assert_close(small, whole)
    assert not torch.allclose(small, sample(noise, data, s, steps=20, batch_size=50, seed=4))


def test_ode_samples_land_on_the_mixture() -> None:
    data = _mixture(200, 2, 0, spread=0.3).float()
    samples = sample(_normal(1000, 2, 1).float(), data, Schedule(1e-4), steps=200, batch_size=100, seed=0)
    assert (samples.mean(0) - data.mean(0)).abs().max() < 0.15
    assert (torch.cov(samples.T) - torch.cov(data.T)).abs().max() < 0.15
    near_mode = (samples[:, 0].abs() - 1.5).abs() < 3 * 0.3
    assert near_mode.float().mean() > 0.97


def test_log_prob_is_the_kernel_density_of_the_data() -> None:
    """With the whole data as the batch, (D7) is the log-density of the data convolved with
    N(0, εI). The residual with the N(0, I) prior is the prior's (the estimator's own p_1 is the
    data mixture at t = 1): with that prior the ODE matches to solver accuracy."""
    s, data, x = Schedule(0.05), _mixture(100, 1, 0), torch.linspace(-4, 4, 41).double()[:, None]
    exact = kde_log_prob(x, data, s)
    assert (log_prob(x, data, s, steps=200) - exact).abs().max() < 0.25
    z1, integral = flow(x, data, s, time_grid(s, 200, "log"), solver="heun")
    torch.testing.assert_close(kde_log_prob(z1, data, s, t=1.0) + integral, exact, rtol=0, atol=0.01)


def test_log_prob_integrates_to_one() -> None:
    s, data = Schedule(0.05), _mixture(100, 1, 0)
    grid = torch.linspace(-6, 6, 241).double()[:, None]
    density = log_prob(grid, data, s, steps=100).exp()
    assert float(torch.trapezoid(density, grid[:, 0])) == pytest.approx(1.0, abs=0.02)


def test_generator_reproduces_the_ode_map_on_held_out_noise() -> None:
    data = (_normal(500, 2, 0) @ torch.tensor([[1.0, 0.6], [0.0, 0.8]]).double()).numpy()
    config = DensityConfig(eps=0.05, steps=100, pairs=2000, epochs=60, mlp_batch=256, seed=0)
    model = fit(data, config)
    ode, mlp = model.ode_sample(500, seed=123), model.sample(500, seed=123)
    assert ode.shape == mlp.shape == (500, 2)
    assert float((ode - mlp).square().mean()) < 0.05 * float(ode.var(0).mean())
    assert model.losses[-1] < model.losses[0]
    assert torch.isfinite(model.log_prob(data[:10])).all()


@pytest.mark.parametrize(
    "changes",
    [
        {"eps": 0.0},
        {"eps": 1.0},
        {"steps": 0},
        {"solver": "rk9"},
        {"likelihood_solver": "midpoint"},
        {"grid": "cubic"},
        {"batch_size": 0},
        {"lr": 0.0},
    ],
)
def test_config_rejects_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(InputError):
        DensityConfig(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [np.zeros(5), np.zeros((1, 2)), np.array([[0.0, 1.0], [np.nan, 2.0]])])
def test_fit_rejects_bad_data(data: np.ndarray) -> None:
    with pytest.raises(InputError):
        fit(data, DensityConfig(steps=1, pairs=1, epochs=1))


def test_ode_rejects_unknown_solver_and_grid() -> None:
    s, data, noise = Schedule(1e-4), _normal(5, 2, 0), _normal(3, 2, 1)
    with pytest.raises(InputError):
        sample(noise, data, s, steps=2, solver="rk9")
    with pytest.raises(InputError):
        time_grid(s, 2, "cubic")
