"""GreenFlow's allocator on disk and in serving: :func:`save_allocator` / :func:`load_allocator`,
and :func:`serve_table` (one chain per request row).

The allocator of "GreenFlow: A Computation Allocation Framework for Building Environmentally
Sound Recommendation System" (IJCAI 2023, arXiv:2312.16176) serves (D1) of
:mod:`.primal_dual`, ``j*(x) = argmax_j (Q̂_j(x) − λ q_j)``: all it needs is the reward
estimator's MLP (``mlp`` kind: input standardisation ``mean``, ``std`` [F]; layers ``W_l``
[d_l, d_{l+1}], ``b_l`` [d_{l+1}]; the target's ``scale`` and ``shift``), the chain costs ``q``
[C], ``λ``, the chains' names and the feature names. One ``.npz`` file (numpy, no pickle):

- arrays ``cost`` (float64) and the estimator's: ``mlp``: ``mean``, ``std``, ``w0, b0, w1, b1, …``
  (float64); ``hgb``: ``onnx`` (uint8: the boosted trees as an ONNX graph, no code in it) and
  ``chain_matrix`` [C, 2·S] (each chain's stage choices, the trees' last columns);
- with a pacing plan (:class:`~.pacing.PacingPlan`, the rule (D3) that sets ``λ`` before every
  request in serving): ``pace_grid``, ``pace_rho`` [G] (yesterday's spend curve), ``pace_budgets``,
  ``pace_expected`` [W] (budget and forecast requests per window) and, when the plan has them,
  ``pace_window_rho`` [W, G] (yesterday's curve per window);
- ``meta``: UTF-8 JSON bytes (format, estimator, ``λ``, scale, shift, chains, feature names, the plan's window
  length, ``κ``, ``z``, ``a`` and ``D``, provenance: code version and what the caller adds);
- ``sha256``: the hash of ``meta`` and of every array's name, dtype, shape and bytes, checked on
  loading, so an altered or truncated file is a one-line :class:`~graph.errors.InputError`.

The file is written aside and renamed (:func:`graph.files.write_file`). Files without
``estimator`` in ``meta`` hold an ``mlp``.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from graph import files
from graph.errors import InputError
from graph.version import code_version

if TYPE_CHECKING:
    from consumers.allocation.primal_dual import Allocator

FORMAT = "mokg-allocator/1"


def save_allocator(path: str | Path, allocator: Allocator, info: dict[str, Any] | None = None) -> Path:
    """Write ``allocator`` (module doc) to ``path``; ``info`` joins its provenance."""
    model = allocator.model
    if allocator.chains is None or allocator.feature_names is None:
        raise InputError("an allocator is saved with its chains and feature names; build it with both")
    st = model.state
    arrays: dict[str, Any] = {"cost": allocator.cost}
    if model.kind == "mlp":
        arrays |= {"mean": st["mean"], "std": st["std"]}
        for i, (w, b) in enumerate(st["layers"]):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        estimator = {"scale": float(st["scale"]), "shift": float(st["shift"]), "layers": len(st["layers"])}
    else:
        arrays["chain_matrix"] = st["chains"]
        estimator = {"threads": int(st["threads"])}
    plan = allocator.plan
    pacing = None
    if plan is not None:
        pacing = {"window_s": plan.window_s, "prior": plan.prior, "margin": plan.margin}
        pacing |= {"rate_prior": plan.rate_prior, "dispersion": plan.dispersion}
        arrays |= {"pace_grid": plan.curve.grid, "pace_rho": plan.curve.rho}
        arrays |= {"pace_budgets": plan.budgets, "pace_expected": plan.expected}
        if plan.window_rho is not None:
            arrays["pace_window_rho"] = plan.window_rho
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    if model.kind == "hgb":
        arrays["onnx"] = np.frombuffer(st["onnx"], np.uint8)
    meta = {
        "format": FORMAT,
        "estimator": model.kind,
        "lam": allocator.lam,
        **estimator,
        "chains": [c.name for c in allocator.chains],
        "feature_names": list(allocator.feature_names),
        "pacing": pacing,
        "info": {"code_version": code_version(), **(info or {})},
    }
    raw = json.dumps(meta, sort_keys=True, default=str).encode()
    blob = io.BytesIO()
    digest = np.asarray(files.array_digest(raw, arrays))
    np.savez(blob, meta=np.frombuffer(raw, np.uint8), sha256=digest, **arrays)
    return files.write_file(path, lambda tmp: tmp.write_bytes(blob.getvalue()))


def load_allocator(path: str | Path) -> Allocator:
    """Read what :func:`save_allocator` wrote, hash checked; anything else is a one-line error."""
    from consumers.allocation.outcomes import Chain
    from consumers.allocation.pacing import PacingPlan, SpendCurve
    from consumers.allocation.primal_dual import Allocator
    from consumers.allocation.reward import RewardModel

    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"{p} is not a file; give an allocator written by mokg allocate simulate --save-allocator"
        )
    if not zipfile.is_zipfile(p):
        raise InputError(
            f"{p} is not an allocator (.npz); write one with mokg allocate simulate --save-allocator"
        )
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        raw = arrays.pop("meta").tobytes()
        digest = str(arrays.pop("sha256"))
        meta = json.loads(raw)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{p} is not a readable allocator ({exc}); save it again") from None
    if meta.get("format") != FORMAT or digest != files.array_digest(raw, arrays):
        raise InputError(f"{p} fails its sha256 check (altered or foreign); save the allocator again")
    chains = tuple(Chain.parse(n) for n in meta["chains"])
    kind = meta.get("estimator", "mlp")
    if kind == "hgb":
        state = {
            "onnx": arrays["onnx"].tobytes(),
            "chains": arrays["chain_matrix"],
            "threads": meta["threads"],
        }
    else:
        layers = [(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(meta["layers"])]
        state = {"mean": arrays["mean"], "std": arrays["std"], "layers": layers}
        state |= {"scale": meta["scale"], "shift": meta["shift"]}
    model = RewardModel(kind, len(chains), state)
    allocator = Allocator(model, arrays["cost"], meta["lam"], chains, tuple(meta["feature_names"]))
    if meta.get("pacing"):
        curve = SpendCurve(arrays["pace_grid"], arrays["pace_rho"])
        budgets, expected = arrays["pace_budgets"], arrays["pace_expected"]
        window_rho = arrays.get("pace_window_rho")
        allocator.pace(PacingPlan(curve, budgets, expected, window_rho=window_rho, **meta["pacing"]))
    return allocator


def serve_table(
    allocator: Allocator, requests: pd.DataFrame, id_column: str = "request", paced: bool = False
) -> pd.DataFrame:
    """One row per request of ``requests`` (its feature columns by name; ``id_column`` when there,
    else the row number): ``request``, ``chain`` (index), ``chain_name`` and ``lambda``, by (D1) at
    the allocator's ``λ``, or with ``paced`` at the ``λ`` its pacing plan (D3) sets before each
    request: the requests are then served in the order of their ``time`` column (seconds; Unix
    time or seconds of the day, UTC), each day's windows starting with nothing spent, and the rows
    come back in the order given."""
    names = list(allocator.feature_names or ())
    missing = [n for n in names if n not in requests.columns]
    if missing:
        raise InputError(
            f"the requests lack the feature columns {', '.join(missing)}; give every one of {names}"
        )
    x = requests[names].to_numpy(float)
    lams = np.full(len(requests), allocator.lam)
    if not paced:
        choice = allocator.choose_batch(x) if len(requests) else np.zeros(0, int)
    else:
        choice, lams = _paced_choices(allocator, x, requests)
    ids = requests[id_column].astype(str) if id_column in requests else pd.Series(range(len(requests)))
    chains = allocator.chains or ()
    return pd.DataFrame(
        {
            "request": ids.to_numpy(),
            "chain": choice,
            "chain_name": [chains[j].name if chains else "" for j in choice],
            "lambda": lams,
        }
    )


def _paced_choices(
    allocator: Allocator, x: NDArray[np.float64], requests: pd.DataFrame
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    from consumers.allocation.traffic import DAY_S

    if allocator.plan is None:
        raise InputError(
            "this allocator has no pacing plan; save one with mokg allocate simulate --save-allocator, "
            "or serve at a fixed λ with --lambda"
        )
    if "time" not in requests.columns:
        raise InputError(
            "pacing needs a time column (seconds, Unix or of the day); add it, or serve at a fixed λ "
            "with --no-pace or --lambda"
        )
    t = pd.to_numeric(requests["time"], errors="coerce").to_numpy(float)
    if not np.all(np.isfinite(t)):
        raise InputError("the time column has empty or non-numeric values; give seconds for every request")
    choice, lams = np.zeros(len(t), dtype=np.int64), np.zeros(len(t))
    day = None
    for i in np.argsort(t, kind="stable"):
        d, offset = divmod(float(t[i]), DAY_S)
        if d != day:
            allocator.pace(allocator.plan)
            day = d
        choice[i] = allocator.choose_at(x[i], offset)
        lams[i] = allocator.lam
    return choice, lams


def pacing_windows(allocator: Allocator) -> pd.DataFrame:
    """The last day served by (D3): per window its requests, budget, spend and their ratio."""
    if allocator.pacer is None or allocator.plan is None:
        raise InputError("this allocator has no pacing plan")
    plan, spend = allocator.plan, allocator.pacer.spend
    return pd.DataFrame(
        {
            "window": np.arange(len(plan.budgets)),
            "requests": allocator.pacer.requests,
            "budget": plan.budgets,
            "spend": spend,
            "ratio": spend / np.where(plan.budgets > 0, plan.budgets, np.nan),
        }
    )
