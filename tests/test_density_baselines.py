"""Baselines of consumers/density on a small 2-D Gaussian mixture: KDE, zuko MAF / NSF, DSM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from consumers.density.baselines import DSMConfig, FlowConfig, KDEConfig, make_baseline
from consumers.density.baselines.dsm import alpha_beta, euler_probability_flow, t_of_sigma
from graph.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAR = np.array([[6.0, 6.0], [-6.0, 5.0]])


def _mixture(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[-1.0, 0.0], [1.0, 0.0]])[rng.integers(0, 2, n)]
    return centres + rng.normal(0.0, 0.3, (n, 2))


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("kde", KDEConfig(bandwidths=(0.1, 0.3), folds=3)),
        ("maf", FlowConfig(kind="maf", transforms=2, hidden_features=(16, 16), max_epochs=3)),
        ("nsf", FlowConfig(kind="nsf", transforms=2, hidden_features=(16, 16), max_epochs=3)),
    ],
)
def test_likelihood_baselines_prefer_the_data(name: str, config: KDEConfig | FlowConfig) -> None:
    model = make_baseline(name, config).fit(_mixture(400, 0), _mixture(100, 1), seed=0)
    inside, far = model.log_prob(_mixture(50, 2)), model.log_prob(FAR)
    assert inside is not None and far is not None
    assert np.isfinite(inside).all() and np.isfinite(far).all()
    assert inside.mean() > far.max()
    samples = model.sample(64, seed=5)
    assert samples.shape == (64, 2) and np.array_equal(samples, model.sample(64, seed=5))
    assert model.fit_seconds > 0


def test_dsm_trains_a_few_steps_and_samples() -> None:
    config = DSMConfig(hidden=16, layers=2, steps=5, ode_steps=10)
    model = make_baseline("dsm", config).fit(_mixture(200, 0), _mixture(50, 1), seed=0)
    assert model.log_prob(FAR) is None
    samples = model.sample(32, seed=1)
    assert samples.shape == (32, 2) and np.isfinite(samples).all()


def test_euler_sampler_recovers_a_gaussian_with_its_exact_noise_predictor() -> None:
    import torch

    eps, mean, std = 1e-4, 1.0, 0.5  # data N(1, 0.5²): x_t ~ N(α m, α² s² + β²)

    def exact(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, b = alpha_beta(float(t), eps)
        xi: torch.Tensor = b * (x - a * mean) / (a**2 * std**2 + b**2)
        return xi

    a1, b1 = alpha_beta(1.0, eps)
    x1 = torch.randn(4000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x0 = euler_probability_flow(exact, x1 * math.sqrt(a1**2 * std**2 + b1**2) + a1 * mean, eps, 100)
    assert abs(float(x0.mean()) - mean) < 0.05 and abs(float(x0.std()) - std) < 0.05


def test_t_of_sigma_inverts_the_schedule() -> None:
    t = np.array([0.0, 0.3, 0.9, 1.0])
    a, b = alpha_beta(t, 1e-4)
    assert np.allclose(t_of_sigma(b / a, 1e-4), t, atol=1e-9)


def test_make_baseline_refuses_unknown_names_and_configs() -> None:
    with pytest.raises(InputError, match="choose one of"):
        make_baseline("gmm")
    with pytest.raises(InputError, match="kind 'maf'"):
        make_baseline("nsf", FlowConfig(kind="maf"))
    with pytest.raises(InputError, match="cannot take"):
        make_baseline("kde", DSMConfig())
