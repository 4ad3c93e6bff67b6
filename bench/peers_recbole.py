"""The RecBole side of ``python -m bench.peers``: one model per process, under the *peer* python.

Run as ``PEER_PYTHON bench/peers_recbole.py JOB.json`` (``bench.peers`` writes the job and reads
what comes back). It imports nothing of ours: RecBole 1.2.1 (Zhao et al., *RecBole: Towards a
Unified, Comprehensive and Efficient Framework for Recommendation Algorithms*, CIKM 2021) pins
dependencies that would break the project's venv, so it lives in ``.venv-peers`` (``make peers``)
and everything crosses over as files.

Two kinds of job:

- ``peer``: RecBole trains ``model`` on the benchmark files ``DATA_PATH/NAME/NAME.{train,valid,
  test}.inter`` (plus ``.kg`` / ``.link`` for knowledge-aware models) for exactly ``epochs`` epochs
  (``eval_step: 0``: no validation, no early stopping, like our side), then ``full_sort_predict``
  scores every listed user over every listed item. Writes ``scores`` (npy, float32
  ``[users, items]`` in the job's order; ``-inf`` for an item RecBole does not know) and ``result``.
- ``anchor``: RecBole's own quick start (``run_recbole(model="BPR", dataset="ml-100k")`` step by
  step, without its ``ray`` import): its default random 8:1:1 split, early stopping on MRR@10,
  full ranking, the best checkpoint evaluated by its own evaluator. Writes ``result``.

``result`` (JSON) holds train seconds, epochs run, evaluation seconds and users, and the process's
own peak RSS (``ru_maxrss``), so each model is measured alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import resource
import sys
import time
import types
from pathlib import Path
from typing import Any

EVAL_BATCH = 256  # users per full_sort_predict call (our evaluator's batch too)


def apply_shims() -> None:
    """Let RecBole 1.2.1 (2023) run on NumPy 2, current SciPy and torch 2.13 (CPU) unchanged."""
    # torch >= 2.6 loads checkpoints with weights_only=True; RecBole's checkpoints hold its Config
    # (the anchor reloads its best one), so allow full unpickling of files this process wrote.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import numpy as np
    import scipy.sparse as sp

    # Config.compatibility_settings() runs `np.float = np.float_` etc.; NumPy 2 removed the right sides.
    for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if old not in np.__dict__:
            setattr(np, old, new)
    # LightGCN/KGIN build their adjacency with dok_matrix._update(dict), gone from SciPy >= 1.12,
    # where a dok_matrix keeps its entries in `_dict`.
    if not hasattr(sp.dok_matrix, "_update"):

        def _update(self: Any, data: dict[tuple[int, int], float]) -> None:
            self._dict.update(data)

        sp.dok_matrix._update = _update
    # KGIN imports torch_scatter.scatter_mean, which has no wheel for torch 2.13 on PyPI; it is a
    # per-row mean of the rows sent to each index (0 for an index nobody sends to).
    if importlib.util.find_spec("torch_scatter") is None:
        sys.modules["torch_scatter"] = _scatter_module()


def _scatter_module() -> types.ModuleType:
    import torch

    def scatter_mean(src: Any, index: Any, dim: int = 0, dim_size: int | None = None) -> Any:
        assert dim == 0, "only dim=0 is shimmed (what KGIN uses)"
        n = int(index.max()) + 1 if dim_size is None else dim_size
        total = src.new_zeros((n, *src.shape[1:])).index_add_(0, index, src)
        count = src.new_zeros(n).index_add_(0, index, torch.ones_like(index, dtype=src.dtype))
        return total / count.clamp(min=1).view(-1, *([1] * (src.dim() - 1)))

    module = types.ModuleType("torch_scatter")
    module.scatter_mean = scatter_mean  # type: ignore[attr-defined]
    return module


def _recbole() -> dict[str, Any]:
    """RecBole's entry points (imported by name: the package is untyped and absent from our venv's
    type checks)."""
    names = ("recbole.config", "recbole.data", "recbole.data.interaction", "recbole.utils")
    config, data, interaction, utils = (importlib.import_module(n) for n in names)
    return {
        "Config": config.Config,
        "create_dataset": data.create_dataset,
        "data_preparation": data.data_preparation,
        "Interaction": interaction.Interaction,
        "init_seed": utils.init_seed,
        "init_logger": utils.init_logger,
        "get_model": utils.get_model,
        "get_trainer": utils.get_trainer,
    }


def prepare(model: str, dataset: str, overrides: dict[str, Any]) -> tuple[Any, ...]:
    """What ``run_recbole`` does before training: config, seed, logger, dataset, loaders, model,
    trainer (``recbole/quick_start/quick_start.py``, v1.2.1)."""
    rb = _recbole()
    config = rb["Config"](model=model, dataset=dataset, config_dict=overrides)
    rb["init_seed"](config["seed"], config["reproducibility"])
    rb["init_logger"](config)
    data = rb["create_dataset"](config)
    train, valid, test = rb["data_preparation"](config, data)
    rb["init_seed"](config["seed"] + config["local_rank"], config["reproducibility"])
    net = rb["get_model"](config["model"])(config, train._dataset).to(config["device"])
    trainer = rb["get_trainer"](config["MODEL_TYPE"], config["model"])(config, net)
    return config, data, train, valid, test, net, trainer


def run_peer(job: dict[str, Any]) -> dict[str, Any]:
    """Train for the job's epochs on its benchmark files, then score its users over its items."""
    import numpy as np

    config, data, train, _valid, test, net, trainer = prepare(job["model"], job["dataset"], job["config"])
    start = time.perf_counter()
    trainer.fit(train, None, saved=False, show_progress=False)
    train_s = time.perf_counter() - start
    scores, eval_s = full_scores(net, data, job["users"], job["items"])
    np.save(job["scores"], scores)
    # RecBole's own evaluator on the same model and test file (ranks over every item, so it matches
    # ours where the target catalogue is every item): a check of the token mapping end to end
    own = trainer.evaluate(test, load_best_model=False, show_progress=False)
    return {
        "recbole_own_test": {k: float(v) for k, v in own.items()},
        "train_s": train_s,
        "epochs": config["epochs"],
        "eval_s": eval_s,
        "eval_users": len(job["users"]),
        "recbole_users": int(data.user_num),
        "recbole_items": int(data.item_num),
        "unknown_items": int(np.isneginf(scores[0]).sum()) if len(scores) else 0,
        "last_loss": _loss(trainer),
    }


def full_scores(net: Any, data: Any, users: list[str], items: list[str]) -> tuple[Any, float]:
    """``full_sort_predict`` for ``users`` (tokens) in batches, columns reordered to ``items``
    (tokens; ``-inf`` where RecBole has no such item); returns the matrix and the seconds taken."""
    import numpy as np
    import torch

    interaction = _recbole()["Interaction"]
    uid, iid = data.field2token_id[data.uid_field], data.field2token_id[data.iid_field]
    rows = torch.tensor([uid[u] for u in users], dtype=torch.long)
    cols = np.array([iid.get(i, -1) for i in items], dtype=np.int64)
    known = cols >= 0
    out = np.full((len(users), len(items)), -np.inf, dtype=np.float32)
    net.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(rows), EVAL_BATCH):
            batch = rows[lo : lo + EVAL_BATCH]
            s = net.full_sort_predict(interaction({data.uid_field: batch})).view(len(batch), -1)
            out[lo : lo + len(batch), known] = s.numpy()[:, cols[known]]
    return out, time.perf_counter() - start


def run_anchor(job: dict[str, Any]) -> dict[str, Any]:
    """RecBole's quick start for BPR on ml-100k, its protocol untouched (``job["config"]`` only
    moves files and the device: CPU, checkpoint folder, no progress bars)."""
    config, _data, train, valid, test, _net, trainer = prepare("BPR", "ml-100k", job["config"])
    start = time.perf_counter()
    best_score, best_valid = trainer.fit(train, valid, saved=True, show_progress=False)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    test_result = trainer.evaluate(test, load_best_model=True, show_progress=False)
    return {
        "train_s": train_s,
        "epochs": len(trainer.train_loss_dict),
        "eval_s": time.perf_counter() - start,
        "best_valid_score": float(best_score),
        "best_valid": {k: float(v) for k, v in best_valid.items()},
        "test_result": {k: float(v) for k, v in test_result.items()},
        "config": {k: _plain(config[k]) for k in ("seed", "epochs", "eval_args", "valid_metric", "topk")},
    }


def peak_rss_mb() -> float:
    """This process's own peak resident set in MB: ``VmHWM`` of /proc/self/status (Linux), which
    starts afresh at exec; ``ru_maxrss`` (the fallback) keeps the parent's peak across fork + exec."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _loss(trainer: Any) -> float | None:
    losses = trainer.train_loss_dict
    return float(losses[max(losses)]) if losses else None


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {Path(argv[0]).name} JOB.json (written by python -m bench.peers)", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[1]).read_text())
    sys.argv = sys.argv[:1]  # RecBole's Config parses the command line for --key=value overrides
    apply_shims()
    import torch

    torch.set_num_threads(job["threads"])
    result = run_anchor(job) if job["kind"] == "anchor" else run_peer(job)
    result["peak_rss_mb"] = peak_rss_mb()
    result["torch"] = torch.__version__
    result["recbole"] = importlib.import_module("recbole").__version__
    Path(job["result"]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
