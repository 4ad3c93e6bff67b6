"""GreenFlow's reward estimator: per request, the predicted reward of every action chain
("GreenFlow: A Computation Allocation Framework for Building Environmentally Sound Recommendation
System", IJCAI 2023, arXiv:2312.16176).

Trained on an exploration log: on a *different* set of requests (yesterday), each request was
served by a chain drawn uniformly at random and only that chain's reward was observed,
``(x_n, c_n, Q_n)`` for ``n = 1..N``. Two maintained models:

- ``mlp`` (default): one torch MLP ``f: R^F → R^C`` (shared trunk, ``C`` outputs), trained on the
  observed entry only, ``min Σ_n (f(x_n)[c_n] − Q_n)²`` (E1), inputs standardised, targets scaled
  by their std; ``valid_share`` of the logged requests is held out (all their rows) and training
  stops when its error has not improved for ``patience`` epochs (the best epoch's weights are
  kept), so a small log is neither under- nor over-trained. Prediction runs in numpy from the
  exported weights: a few µs a request.
- ``hgb``: sklearn's ``HistGradientBoostingRegressor`` on ``[x_n, s(c_n)]`` with ``s(c)`` the
  chain's stage choices (per stage: instance code and log item count), predicting each chain by
  tiling the request over the ``C`` chains; with ``monotonic`` the reward is constrained to be
  non-decreasing in every stage's item count. Once fitted, the booster is converted to an ONNX
  graph (skl2onnx: one ``TreeEnsembleRegressor`` node, float32 inputs) and predicts in ONNX
  Runtime, in the evaluation and in serving alike: a file format without pickle, and one request's
  chains in about a tenth of the time of sklearn's ``predict`` (``python -m bench.allocation
  --estimator hgb`` measures both).

The paper's estimator is a recursive multi-stage model with multi-basis functions and monotonic
constraints (reward non-decreasing in computation); ours are simplifications of it: the MLP shares
one trunk across the chains' heads, the boosted trees carry the monotonic constraint.

Evaluation (:func:`estimator_quality`) on held-out requests whose every chain's true reward is
known: squared error on uniformly random entries against a constant predictor (the log's mean
reward), calibration (mean predicted vs mean realised in predicted-reward deciles) and the
per-request ranking of chains (Spearman, NDCG, and the share of the best chain's reward that the
predicted best chain earns).
Shapes: features [R, F], predictions [R, C].
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from consumers.allocation.config import RewardConfig
from consumers.allocation.outcomes import Chain, ChainOutcomes
from graph.errors import InputError

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class ExplorationLog:
    """``features`` [N, F], ``chain`` [N] (the random chain served), ``reward`` [N] (observed),
    ``request`` [N] (the logged request each row belongs to; several rows with ``every``)."""

    features: F64
    chain: NDArray[np.int64]
    reward: F64
    request: NDArray[np.int64]


def exploration_log(outcomes: ChainOutcomes, seed: int, every: bool = False) -> ExplorationLog:
    """Serve every request of ``outcomes`` a uniformly random chain and log what it earned; with
    ``every``, log every chain's reward for every request (``R·C`` rows: a simulator's upper bound)."""
    if every:
        n, c = outcomes.n_requests, len(outcomes.chains)
        features = np.repeat(np.asarray(outcomes.features, float), c, axis=0)
        chains = np.tile(np.arange(c, dtype=np.int64), n)
        rows = np.repeat(np.arange(n, dtype=np.int64), c)
        return ExplorationLog(features, chains, np.asarray(outcomes.rewards, float).ravel(), rows)
    rng = np.random.default_rng(seed)
    chain = rng.integers(0, len(outcomes.chains), size=outcomes.n_requests)
    reward = outcomes.rewards[np.arange(outcomes.n_requests), chain]
    rows = np.arange(outcomes.n_requests, dtype=np.int64)
    return ExplorationLog(np.asarray(outcomes.features, float), chain.astype(np.int64), reward, rows)


def chain_matrix(chains: tuple[Chain, ...]) -> F64:
    """[C, 2·S] per stage position: the instance's code (order of first appearance) and log n_items."""
    n_stages = max(len(c.stages) for c in chains)
    codes: list[dict[str, int]] = [{} for _ in range(n_stages)]
    rows = []
    for c in chains:
        row = []
        for i, s in enumerate(c.stages):
            row += [codes[i].setdefault(s.instance, len(codes[i])), np.log1p(s.n_items)]
        rows.append(row + [-1.0, 0.0] * (n_stages - len(c.stages)))
    return np.asarray(rows, float)


ONNX_OPSETS = {"": 17, "ai.onnx.ml": 3}


def trees_to_onnx(model: Any, n_inputs: int) -> bytes:
    """A fitted ``HistGradientBoostingRegressor`` of ``n_inputs`` columns as ONNX bytes (skl2onnx)."""
    import warnings

    from skl2onnx import to_onnx  # type: ignore[import-untyped]

    with warnings.catch_warnings():  # skl2onnx 1.20 writes booleans into int attributes (onnx 1.23 warns)
        warnings.filterwarnings(
            "ignore", message="Field onnx.AttributeProto.ints", category=DeprecationWarning
        )
        graph = to_onnx(model, np.zeros((1, n_inputs), np.float32), target_opset=ONNX_OPSETS)
    return bytes(graph.SerializeToString())


class TreeSession:
    """An ONNX Runtime session of :func:`trees_to_onnx`'s graph on ``threads`` threads, predicting
    every chain of a request: the request's features beside each chain's row of ``chains`` [C, K]."""

    def __init__(self, graph: bytes, chains: F64, threads: int) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        try:
            self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph types
            raise InputError(
                f"the reward estimator's ONNX graph does not load ({exc}); fit it again"
            ) from None
        self.input = self.session.get_inputs()[0].name
        self.chains = np.asarray(chains, np.float32)
        self.n_features = int(self.session.get_inputs()[0].shape[1]) - self.chains.shape[1]
        self._row = np.hstack([np.zeros((len(chains), self.n_features), np.float32), self.chains])

    def predict(self, x: F64) -> F64:
        """[R, F] → [R, C]."""
        n, c = len(x), len(self.chains)
        rows = np.empty((n * c, self._row.shape[1]), np.float32)
        rows[:, : self.n_features] = np.repeat(np.asarray(x, np.float32), c, axis=0)
        rows[:, self.n_features :] = np.tile(self.chains, (n, 1))
        return np.asarray(self.session.run(None, {self.input: rows})[0], float).reshape(n, c)

    def predict_row(self, row: F64) -> F64:
        """[F] → [C], on a copy of a prepared [C, F + K] block (safe to call from several threads)."""
        rows = self._row.copy()
        rows[:, : self.n_features] = np.asarray(row, np.float32)
        return np.asarray(self.session.run(None, {self.input: rows})[0][:, 0], float)


class RewardModel:
    """A fitted estimator: :meth:`predict` [R, F] → [R, C]; :meth:`predict_row` [F] → [C].

    ``state``: ``mlp``: ``mean``, ``std``, ``layers``, ``scale``, ``shift``; ``hgb``: ``onnx``
    (the graph's bytes), ``chains`` (:func:`chain_matrix`), ``threads`` and, after a fit (not saved),
    ``booster`` (sklearn's fitted model, which the graph was converted from)."""

    def __init__(self, kind: str, n_chains: int, state: dict[str, Any]) -> None:
        self.kind, self.n_chains, self.state = kind, n_chains, state
        self.trees = TreeSession(state["onnx"], state["chains"], state["threads"]) if kind == "hgb" else None

    def predict(self, features: F64) -> F64:
        x = np.asarray(features, float)
        if self.trees is not None:
            return self.trees.predict(x)
        if self.kind == "mlp":
            h = (x - self.state["mean"]) / self.state["std"]
            for w, b in self.state["layers"][:-1]:
                h = np.maximum(h @ w + b, 0.0)
            w, b = self.state["layers"][-1]
            return np.asarray((h @ w + b) * self.state["scale"] + self.state["shift"], float)
        raise InputError(f"unknown reward estimator kind {self.kind!r}; fit mlp or hgb")

    def predict_row(self, row: F64) -> F64:
        if self.trees is not None:
            return self.trees.predict_row(row)
        return np.asarray(self.predict(np.asarray(row, float)[None, :])[0], dtype=float)


def fit_reward(log: ExplorationLog, chains: tuple[Chain, ...], config: RewardConfig) -> RewardModel:
    """Fit ``config.kind`` on the exploration log (E1), seeded by ``config.seed``."""
    if len(log.reward) < 10:
        raise InputError(f"the exploration log has {len(log.reward)} rows; log at least 10 requests")
    if config.kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        cm = chain_matrix(chains)
        monotone = [0] * log.features.shape[1] + [0, 1 if config.monotonic else 0] * (cm.shape[1] // 2)
        model = HistGradientBoostingRegressor(
            max_iter=min(config.epochs * 10, 500), monotonic_cst=monotone, random_state=config.seed
        )
        with threadpool_limits(limits=config.threads):
            model.fit(np.hstack([log.features, cm[log.chain]]), log.reward)
        graph = trees_to_onnx(model, log.features.shape[1] + cm.shape[1])
        state = {"onnx": graph, "chains": cm, "threads": config.threads, "booster": model}
        return RewardModel("hgb", len(chains), state)
    return RewardModel("mlp", len(chains), _fit_mlp(log, len(chains), config))


def _fit_mlp(log: ExplorationLog, n_chains: int, config: RewardConfig) -> dict[str, Any]:
    import torch

    torch.manual_seed(config.seed)
    mean, std = log.features.mean(0), log.features.std(0) + 1e-8
    shift, scale = float(log.reward.mean()), float(log.reward.std() + 1e-12)
    x = torch.as_tensor((log.features - mean) / std, dtype=torch.float32)
    y = torch.as_tensor((log.reward - shift) / scale, dtype=torch.float32)
    c = torch.as_tensor(log.chain)
    dims = [x.shape[1]] + [config.hidden] * config.depth + [n_chains]
    layers: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(dims):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    requests = np.unique(log.request)  # the held-out tenth is whole requests: no row of theirs trains
    held = requests[torch.randperm(len(requests), generator=gen).numpy()]
    n_valid = max(1, int(len(held) * config.valid_share)) if len(held) >= 20 else 0
    in_valid = torch.as_tensor(np.isin(log.request, held[:n_valid]))
    valid, train = torch.nonzero(in_valid)[:, 0], torch.nonzero(~in_valid)[:, 0]

    def valid_loss() -> float:
        with torch.no_grad():
            out = net(x[valid]).gather(1, c[valid, None])[:, 0]
            return float(torch.nn.functional.mse_loss(out, y[valid]))

    best, best_state, waited = float("inf"), copy.deepcopy(net.state_dict()), 0
    for _ in range(config.epochs):
        for idx in torch.split(train[torch.randperm(len(train), generator=gen)], config.batch_size):
            out = net(x[idx]).gather(1, c[idx, None])[:, 0]
            loss = torch.nn.functional.mse_loss(out, y[idx])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        if not n_valid:
            continue
        current = valid_loss()
        if current < best - 1e-6:
            best, best_state, waited = current, copy.deepcopy(net.state_dict()), 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    if n_valid:
        net.load_state_dict(best_state)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    weights = [
        (m.weight.detach().numpy().T.astype(float), m.bias.detach().numpy().astype(float)) for m in linears
    ]
    return {"mean": mean, "std": std, "shift": shift, "scale": scale, "layers": weights}


def estimator_quality(pred: F64, outcomes: ChainOutcomes, train_mean: float, seed: int) -> dict[str, float]:
    """Held-out skill of ``pred`` [R, C] against ``outcomes.rewards``: MSE on one uniformly random
    chain per request vs the constant ``train_mean`` (``skill`` = 1 − ratio), mean per-request
    Spearman and NDCG over the chains, and the top-1 share (true reward of the predicted best chain
    / the best chain's)."""
    from scipy.stats import rankdata
    from sklearn.metrics import ndcg_score

    true = outcomes.rewards
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, true.shape[1], size=len(true))
    rows = np.arange(len(true))
    mse = float(np.mean((pred[rows, pick] - true[rows, pick]) ** 2))
    mse0 = float(np.mean((train_mean - true[rows, pick]) ** 2))
    rp, rt = rankdata(pred, axis=1), rankdata(true, axis=1)
    rp, rt = rp - rp.mean(1, keepdims=True), rt - rt.mean(1, keepdims=True)
    denom = np.sqrt((rp**2).sum(1) * (rt**2).sum(1))
    spearman = float(np.mean(np.where(denom > 0, (rp * rt).sum(1) / np.where(denom > 0, denom, 1), 0.0)))
    top1 = true[rows, pred.argmax(1)].sum() / true.max(1).sum()
    return {
        "mse": mse,
        "mse_constant": mse0,
        "skill": 1.0 - mse / mse0 if mse0 > 0 else float("nan"),
        "spearman": spearman,
        "ndcg": float(ndcg_score(true - min(0.0, float(true.min())), pred)),
        "top1_share": float(top1),
    }


def calibration(pred: F64, true: F64, bins: int = 10) -> pd.DataFrame:
    """Mean predicted and realised reward of the (request, chain) entries in each predicted decile."""
    p, t = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    frame = pd.DataFrame({"bin": b, "predicted": p, "realised": t})
    out = frame.groupby("bin").agg(
        n=("predicted", "size"), predicted=("predicted", "mean"), realised=("realised", "mean")
    )
    return out.reset_index()
