"""Synthetic users (``mokg density synthesize``): the store's users (:mod:`.users`) learnt by the
training-free diffusion density estimator of Liu et al., "Diffusion-Model-Assisted Supervised
Learning of Generative Models for Density Estimation" (arXiv:2310.14458), and ``n`` new users
drawn from its MLP generator (D8).

1. Read every user as a row of numbers ``X`` [n_users, d] (original units); refuse a source below
   the minimum size (the audience export's floor, ``$MOKG_AUDIENCE_MIN_SIZE``, default 100; a
   request may raise it, never lower it): a density of a few people reproduces them.
2. Split the users at random (seeded): ``heldout`` of them are kept aside, never seen by the fit.
3. Standardise with the train users' mean and std, fit (:func:`.model.fit`), draw ``n`` samples
   [n, d] with the generator, map them back (``x · std + mean``); columns whose train values are
   all integers are rounded, columns never negative are clipped at 0 (counts: both).
4. Check them, in the standardised units, against the train users: memorisation
   (:func:`.metrics.memorisation` with the held-out users as fresh draws; and the share of rows
   that equal a train user exactly, beside that share for the held-out users), marginals
   (two-sample Kolmogorov–Smirnov statistic per column, :func:`scipy.stats.ks_2samp`) and
   correlations (max |Δ| of the Pearson correlation matrices; a constant column counts as
   uncorrelated), each against the train users and against the held-out users; the train users
   against the held-out ones give the reference: what real data of that size scores.
5. Write the samples as Parquet (the feature columns; provenance in the file's metadata under
   ``mokg``), aside and renamed: the file is complete or absent. ``save_model``: the fitted model
   too (:mod:`.persist`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from consumers.density.config import DensityConfig
from consumers.density.metrics import Memorisation
from graph import files
from graph.errors import InputError
from graph.progress import StageProgress
from graph.store import GraphStore
from graph.version import code_version

Array = NDArray[np.float64]
MIN_SPLIT = 10  # users at the very least, so both sides of the split hold several


@dataclass(frozen=True)
class SynthesizeRequest:
    """Args: n synthetic users, written to ``out`` (``.parquet``); min_users: the smallest source
    allowed (None: the deployment's floor; may raise it, never lower it); heldout: the share of
    users kept out of the fit for the checks; vector_components: principal components of the
    foundation model's user vectors added as features (0: none); save_model: also write the
    fitted model there; density: the estimator's config (its seed also seeds the split and the
    samples)."""

    n: int
    out: Path
    min_users: int | None = None
    heldout: float = 0.2
    vector_components: int = 0
    save_model: Path | None = None
    density: DensityConfig = field(default_factory=DensityConfig)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise InputError(f"--n must be at least 1, got {self.n}")
        if Path(self.out).suffix != ".parquet":
            raise InputError(f"--out must name a .parquet file, got {self.out}")
        if self.min_users is not None and self.min_users < 1:
            raise InputError(f"--min-users must be positive, got {self.min_users}")
        if not 0.0 < self.heldout < 1.0:
            raise InputError(f"heldout must lie in (0, 1), got {self.heldout}")


@dataclass(frozen=True)
class Fidelity:
    """How two samples of the same columns agree: KS statistic per column, max |Δ correlation|."""

    ks: dict[str, float]
    corr_diff: float

    @classmethod
    def of(cls, x: Array, ref: Array, names: list[str]) -> Fidelity:
        from scipy.stats import ks_2samp

        ks = {name: float(ks_2samp(x[:, j], ref[:, j]).statistic) for j, name in enumerate(names)}
        return cls(ks, float(np.abs(_corr(x) - _corr(ref)).max()))

    def ks_text(self) -> str:
        worst = max(self.ks, key=self.ks.__getitem__)
        return f"{np.mean(list(self.ks.values())):.3f} / {self.ks[worst]:.3f} ({worst})"


@dataclass(frozen=True)
class SynthesizeResult:
    """What was written and how the samples compare with the users (module doc, step 4)."""

    out: Path
    n: int
    source_users: int
    train_users: int
    heldout_users: int
    features: list[str]
    counts: list[str]
    memorisation: Memorisation
    copies: float  # share of synthetic rows equal to a train user
    copies_heldout: float  # the same share for the held-out users
    vs_train: Fidelity  # synthetic vs train users
    vs_heldout: Fidelity  # synthetic vs held-out users
    reference: Fidelity  # train vs held-out users: what real data scores
    fit_s: float
    sample_s: float
    model_path: Path | None

    def lines(self) -> list[str]:
        m = self.memorisation
        return [
            f"source: {self.source_users} users ({self.train_users} fit, {self.heldout_users} held out)",
            f"features ({len(self.features)}): {', '.join(self.features)}",
            f"counts (rounded, ≥ 0): {', '.join(self.counts) or '-'}",
            f"fit {self.fit_s:.1f} s; {self.n} samples in {self.sample_s:.3f} s",
            f"memorisation: median NN-distance ratio {m.median_ratio:.3f} (≈1 new, 0 copies); "
            f"share memorised {m.share_memorised:.3f} (held-out users: {m.share_heldout:.3f}); "
            f"exact copies of a train user {self.copies:.3f} (held-out users: {self.copies_heldout:.3f})",
            "marginals (KS statistic, mean / max over columns): synthetic vs train users "
            f"{self.vs_train.ks_text()}; vs held-out users {self.vs_heldout.ks_text()}; train vs held-out "
            f"users {self.reference.ks_text()}",
            "KS per column, synthetic vs train: "
            + ", ".join(f"{k} {v:.3f}" for k, v in self.vs_train.ks.items()),
            f"correlations (max |Δ|): synthetic vs train users {self.vs_train.corr_diff:.3f}; vs held-out "
            f"users {self.vs_heldout.corr_diff:.3f}; train vs held-out users {self.reference.corr_diff:.3f}",
            f"wrote {self.n} synthetic users to {self.out}"
            + (f"; model to {self.model_path}" if self.model_path else ""),
        ]


def source_floor(request: SynthesizeRequest) -> int:
    """The smallest source this request allows: the audience export's floor, or a higher one."""
    from gnn.audience.export import MIN_SIZE_ENV, policy_min_size

    floor = policy_min_size()
    if request.min_users is None:
        return floor
    if request.min_users < floor:
        raise InputError(
            f"--min-users {request.min_users} is below this deployment's floor of {floor} ({MIN_SIZE_ENV}); "
            "a flag may raise the minimum, never lower it"
        )
    return request.min_users


def _split(n: int, heldout: float, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    order = np.random.default_rng(seed).permutation(n)
    k = min(max(1, round(n * heldout)), n - 2)
    return np.sort(order[k:]), np.sort(order[:k])


def _to_units(
    z: Array, mean: Array, std: Array, integer: NDArray[np.bool_], nonneg: NDArray[np.bool_]
) -> Array:
    x = z * std + mean
    x[:, integer] = np.round(x[:, integer])
    x[:, nonneg] = np.maximum(x[:, nonneg], 0.0)
    return x


def _corr(x: Array) -> Array:
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(x, rowvar=False)
    c = np.nan_to_num(np.atleast_2d(c))  # a constant column: uncorrelated with the others
    np.fill_diagonal(c, 1.0)
    return c


def _copies(x: Array, train: Array) -> float:
    seen = {row.tobytes() for row in train}
    return float(np.mean([row.tobytes() in seen for row in x]))


def run_synthesize(
    store: GraphStore, request: SynthesizeRequest, progress: StageProgress | None = None
) -> SynthesizeResult:
    """Steps 1–5 of the module doc on the users of ``store``."""
    from consumers.density.metrics import memorisation
    from consumers.density.model import fit
    from consumers.density.users import user_features

    least = source_floor(request)
    files.target(request.out)  # refuse a folder or a device before the fit
    if request.save_model is not None:
        files.target(request.save_model)
    c = request.density
    users = user_features(store, vector_components=request.vector_components, seed=c.seed)
    if len(users.ids) < max(least, MIN_SPLIT):
        raise InputError(
            f"the store has {len(users.ids)} users, fewer than the minimum of {max(least, MIN_SPLIT)}: "
            "synthetic users of so few people reproduce them; load more users"
        )
    train_rows, held_rows = _split(len(users.ids), request.heldout, c.seed)
    train, held = users.X[train_rows], users.X[held_rows]
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    integer = np.all(train == np.round(train), axis=0)
    nonneg = train.min(axis=0) >= 0
    started = time.perf_counter()
    model = fit((train - mean) / std, c, progress)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    z = model.sample(request.n, c.seed + 1).numpy().astype(np.float64)
    sample_s = time.perf_counter() - started
    synth = _to_units(z, mean, std, integer, nonneg)

    def units(x: Array) -> Array:
        return np.asarray((x - mean) / std, dtype=np.float64)

    names = users.names
    memo = memorisation(units(synth), units(train), units(held), seed=c.seed)
    info = {"graph_version": str(store.version()), "source_users": len(users.ids), "features": names}
    model_path = None
    if request.save_model is not None:
        model.save(request.save_model, feature_names=names, mean=mean, std=std, info=info)
        model_path = request.save_model
    _write(request.out, synth, names, integer, info | {"config": c.as_dict(), "n": request.n})
    return SynthesizeResult(
        out=request.out,
        n=request.n,
        source_users=len(users.ids),
        train_users=len(train),
        heldout_users=len(held),
        features=names,
        counts=[n for n, i, p in zip(names, integer, nonneg, strict=True) if i and p],
        memorisation=memo,
        copies=_copies(synth, train),
        copies_heldout=_copies(held, train),
        vs_train=Fidelity.of(synth, train, names),
        vs_heldout=Fidelity.of(synth, held, names),
        reference=Fidelity.of(train, held, names),
        fit_s=fit_s,
        sample_s=sample_s,
        model_path=model_path,
    )


def _write(out: Path, x: Array, names: list[str], integer: NDArray[np.bool_], info: dict[str, Any]) -> None:
    """The samples as Parquet (integer columns as int64), provenance under the ``mokg`` key."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.DataFrame(
        {n: x[:, j].astype(np.int64) if integer[j] else x[:, j] for j, n in enumerate(names)}
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    stamp = {"code_version": code_version(), "method": "arXiv:2310.14458 MLP generator", **info}
    table = table.replace_schema_metadata({b"mokg": json.dumps(stamp, default=str).encode()})
    files.write_file(out, lambda tmp: pq.write_table(table, tmp))
