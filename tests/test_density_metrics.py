"""Sample-quality metrics of consumers/density: ≈ 0 (C2ST 0.5) for one distribution, clearly not for two."""

from __future__ import annotations

import numpy as np
import pytest

from consumers.density.metrics import (
    c2st,
    energy_distance,
    memorisation,
    mmd2,
    sample_metrics,
    sliced_wasserstein,
)
from consumers.density.toy2d import moons

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _samples(n: int, seed: int) -> np.ndarray:
    return moons(n, np.random.default_rng(seed))


@pytest.mark.parametrize("metric", [mmd2, energy_distance, sliced_wasserstein])
def test_distances_separate_same_from_shifted(metric: object) -> None:
    assert callable(metric)
    x, y = _samples(500, 0), _samples(500, 1)
    same, shifted = metric(x, y), metric(x, y + np.array([1.0, 0.0]))
    assert abs(same) < 0.1 and shifted > 5 * max(abs(same), 0.01)


def test_metrics_are_seeded_and_subsample() -> None:
    x, y = _samples(600, 0), _samples(600, 1)
    assert sliced_wasserstein(x, y, seed=2) == sliced_wasserstein(x, y, seed=2)
    assert mmd2(x, y, max_n=100, seed=3) == mmd2(x, y, max_n=100, seed=3)


def test_c2st_is_chance_for_one_distribution_and_high_for_two() -> None:
    x, y = _samples(300, 0), _samples(300, 1)
    assert 0.4 < c2st(x, y) < 0.6
    assert c2st(x, y + np.array([3.0, 0.0])) > 0.9


def test_memorisation_flags_copies_not_fresh_samples() -> None:
    train, heldout = _samples(1000, 0), _samples(300, 1)
    copies = memorisation(train[:300], train, heldout)
    fresh = memorisation(_samples(300, 2), train, heldout)
    assert copies.median_ratio == 0.0 and copies.share_memorised == 1.0
    assert 0.7 < fresh.median_ratio < 1.4 and fresh.share_memorised < 0.3 and fresh.share_heldout < 0.3


def test_sample_metrics_reports_every_metric() -> None:
    report = sample_metrics(_samples(200, 0), _samples(400, 1), _samples(200, 2))
    assert set(report) == {
        "mmd2",
        "energy",
        "sliced_w1",
        "c2st",
        "memo_median_ratio",
        "memo_share",
        "memo_share_heldout",
    }
    assert all(np.isfinite(v) for v in report.values())
