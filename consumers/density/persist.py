"""A fitted density estimator on disk: :func:`save_density` / :func:`load_density`.

The estimator of Liu et al., "Diffusion-Model-Assisted Supervised Learning of Generative Models
for Density Estimation" (arXiv:2310.14458) is its generator (D8) for sampling, and its data and
config for the ODE (D5) and the likelihood (D7); all of it goes into one safetensors file:

- tensors: ``generator.*`` (the MLP's weights and its pairs' standardisation ``μ₁, σ₁, μ₀, σ₀``,
  [d] each), ``data`` ([m, d] float32: the score's Monte Carlo sample (D4), standardised),
  ``feature_mean`` and ``feature_std`` ([d] float64: the standardisation of the data, so samples
  go back to the original units as ``x · std + mean``);
- metadata (strings): ``config`` (the :class:`~consumers.density.config.DensityConfig` as JSON),
  ``features`` (JSON list of the column names), ``losses`` (the generator's loss per epoch),
  ``info`` (provenance: code version and whatever the caller adds, e.g. the graph version), and
  ``sha256``: the hash of every other metadata field and every tensor's name, dtype, shape and
  bytes, checked on loading.

The file is written aside and renamed (:func:`graph.files.write_file`); a missing, truncated or
altered file is a one-line :class:`~graph.errors.InputError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from graph import files
from graph.errors import InputError
from graph.version import code_version

if TYPE_CHECKING:
    from torch import Tensor

    from consumers.density.model import DiffusionDensity

FORMAT = "mokg-density/1"
Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)  # arrays: compare the fields yourself
class SavedDensity:
    """A loaded estimator with its column names and the standardisation of its data ([d] each)."""

    model: DiffusionDensity
    feature_names: tuple[str, ...]
    mean: Array
    std: Array
    info: dict[str, Any]

    def unstandardise(self, x: Tensor | Array) -> Array:
        """Points [n, d] in the model's (standardised) units → the data's original units."""
        return np.asarray(x, dtype=np.float64) * self.std + self.mean


def _digest(meta: dict[str, str], tensors: dict[str, Tensor]) -> str:
    arrays = {name: t.detach().cpu().numpy() for name, t in tensors.items()}
    return files.array_digest(json.dumps(meta, sort_keys=True).encode(), arrays)


def save_density(
    path: str | Path,
    model: DiffusionDensity,
    *,
    feature_names: tuple[str, ...] | list[str] | None = None,
    mean: Array | None = None,
    std: Array | None = None,
    info: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (module doc) to ``path``; names default to ``x0 … x{d-1}``, mean/std to 0/1."""
    import torch
    from safetensors.torch import save

    dim = int(model.data.shape[1])
    names = tuple(feature_names) if feature_names is not None else tuple(f"x{i}" for i in range(dim))
    mu = np.zeros(dim) if mean is None else np.asarray(mean, dtype=np.float64)
    sd = np.ones(dim) if std is None else np.asarray(std, dtype=np.float64)
    if len(names) != dim or mu.shape != (dim,) or sd.shape != (dim,):
        raise InputError(f"feature names, mean and std must each have {dim} entries (the data's columns)")
    tensors = {
        f"generator.{k}": v.detach().cpu().contiguous() for k, v in model.generator.state_dict().items()
    }
    tensors |= {
        "data": model.data.detach().cpu().contiguous(),
        "feature_mean": torch.from_numpy(mu.copy()),
        "feature_std": torch.from_numpy(sd.copy()),
    }
    meta = {
        "format": FORMAT,
        "config": json.dumps(model.config.as_dict(), sort_keys=True),
        "features": json.dumps(list(names)),
        "losses": json.dumps([float(v) for v in model.losses]),
        "info": json.dumps({"code_version": code_version(), **(info or {})}, sort_keys=True, default=str),
    }
    blob = save(tensors, metadata=meta | {"sha256": _digest(meta, tensors)})
    return files.write_file(path, lambda tmp: tmp.write_bytes(blob))


def _read(path: Path) -> tuple[dict[str, str], dict[str, Tensor]]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    if not path.is_file():
        raise InputError(
            f"{path} is not a file; give a model written by --save-model (DiffusionDensity.save)"
        )
    try:
        raw = path.read_bytes()
        tensors = load(raw)
        header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    except (OSError, ValueError, SafetensorError) as exc:
        raise InputError(f"{path} is not a readable density model ({exc}); save it again") from None
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise InputError(f"{path} is not a {FORMAT} file; give a model written by DiffusionDensity.save")
    expected = meta.pop("sha256", None)
    if expected != _digest(meta, tensors):
        raise InputError(
            f"{path} does not match its sha256 (changed or corrupted after saving); save it again"
        )
    return meta, tensors


def load_density(path: str | Path, device: str = "cpu") -> SavedDensity:
    """The estimator saved at ``path`` (sha256 checked), on ``device``, with its names and units."""
    from consumers.density.config import DensityConfig
    from consumers.density.generator import MLPGenerator
    from consumers.density.model import DiffusionDensity

    meta, tensors = _read(Path(path))
    known = {f.name for f in fields(DensityConfig)}
    saved = {k: v for k, v in json.loads(meta["config"]).items() if k in known}
    config = DensityConfig(**(saved | {"device": device}))
    data = tensors["data"].to(device)
    generator = MLPGenerator(int(data.shape[1]), config.width, config.depth)
    state = {k.removeprefix("generator."): v for k, v in tensors.items() if k.startswith("generator.")}
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{path}: the weights do not fit the saved config ({exc}); save it again") from None
    model = DiffusionDensity(data, config, generator.to(device).eval(), json.loads(meta["losses"]))
    return SavedDensity(
        model,
        tuple(json.loads(meta["features"])),
        tensors["feature_mean"].numpy().astype(np.float64),
        tensors["feature_std"].numpy().astype(np.float64),
        json.loads(meta["info"]),
    )
