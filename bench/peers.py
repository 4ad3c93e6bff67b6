"""RecBole beside our recommenders on the same ML-100K split (run: `python -m bench.peers --help`).

One run, per ``--split`` (leave_last_out, cold_items):

1. ML-100K with its Freebase KG is loaded from the installed ``recbole`` wheel into a temporary
   embedded store (what ``mokg load recbole DIR`` does) and our split is built once
   (:func:`gnn.rec.data.load_rec_data`, KG on, text features off). It is written as RecBole
   *benchmark files*: ``peers.train.inter`` = every fit row (what our models train on),
   ``.valid.inter`` = each user's last fit row (a slice of fit; nothing reads it, both sides train
   a fixed number of epochs), ``.test.inter`` = every test row; ``.user`` / ``.item`` list every user
   and item (RecBole knows the whole catalogue, cold items included) and the wheel's ``.kg`` and
   ``.link`` come along. Tokens are the dataset's own ids (``ml-100k:u:196`` → ``196``), so both
   sides map users and items the same way.
2. RecBole (``bench/peers_recbole.py`` under ``--peer-python``, one process per model) trains BPR,
   LightGCN and KGIN on those files and saves ``full_sort_predict`` scores of every test user over
   every item. Our MostPop, BPR-MF and LightGCN train on the same RecData, one process each too.
3. Every score matrix is ranked by *our* evaluator (:func:`gnn.rec.evaluate.evaluate_domain`
   through :class:`SavedScores`): the same exclusion of fit items, the same metric code.
4. ``--anchor``: RecBole's own quick start (BPR on ml-100k, its random 8:1:1 split and every
   default, its evaluator) against the published NDCG@10 0.2768.

Shared settings (ours → RecBole): ``dim`` → ``embedding_size``, ``--epochs`` → ``epochs``,
``batch_size`` → ``train_batch_size``, ``lr`` → ``learning_rate``, ``layers`` → LightGCN ``n_layers``
and KGIN ``context_hops``; one uniform negative per positive, redrawn while it is one of the
user's fit items (both sides); no early stopping on either side.
The regularisers differ in form (ours: squared L2 of the batch's rows; RecBole: its models' own),
so each side keeps its default. Timing: ``s/epoch`` = fit seconds / epochs (set-up included),
``eval users/s`` = users whose full score row is computed per second (batches of 256), ``peak MB``
= the model process's own peak resident set (``VmHWM``); the ranking is shared code and not timed.

The KG-aware peer is KGIN (Wang et al., WWW 2021): KGAT needs DGL, which has no wheel for torch 2.13;
KGIN's one import of ``torch_scatter`` is shimmed in the runner (a per-row mean).

``make peers`` builds the peer environment (``.venv-peers``) and runs this with
``--peer-python .venv-peers/bin/python``. ``--out`` gets results.csv, table.md and peers.json
(the command, every config, the split and graph versions, the anchor).
"""

from __future__ import annotations

import argparse
import json
import pickle
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from bench.peers_files import DOMAIN, NAME, read_inter, tokens, write_benchmark
from bench.peers_recbole import peak_rss_mb  # stdlib only at import; the shims are a function
from bench.peers_report import OUTPUTS, PUBLISHED_NDCG10, report, within, write_outputs
from graph.errors import InputError, MokgError

if TYPE_CHECKING:
    import torch

    from gnn.rec.data import RecData
    from loaders.pyg import SplitKind

REPO = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).with_name("peers_recbole.py")
OURS = ("MostPop", "BPR-MF", "LightGCN")
PEERS = ("RecBole:BPR", "RecBole:LightGCN", "RecBole:KGIN")
EVAL_BATCH = 256


# ---- 3. saved scores, ranked by our evaluator -----------------------------------------------------
class SavedScores:
    """A :class:`~gnn.rec.evaluate.Recommender` that looks its scores up: ``matrix[r]`` is the row
    of user ``users[r]`` (RecData rows, sorted) over every RecData item."""

    def __init__(self, name: str, users: np.ndarray, matrix: np.ndarray) -> None:
        self.name, self.users, self.matrix = name, users, matrix
        self.data: RecData | None = None

    def fit(self, data: RecData, targets: Sequence[str]) -> None:
        self.data = data  # nothing to train: the scores were made elsewhere

    def scores(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        import torch

        assert self.data is not None, "fit first"
        wanted = users.numpy()
        rows = np.minimum(np.searchsorted(self.users, wanted), len(self.users) - 1)
        if len(self.users) == 0 or (self.users[rows] != wanted).any():
            raise InputError(f"{self.name}: no saved scores for some of the users asked for")
        return torch.from_numpy(self.matrix[rows][:, self.data.domain_items(domain)])


def score_rows(model: Any, data: RecData, domain: str, users: np.ndarray) -> tuple[np.ndarray, float]:
    """``model.scores`` of ``users`` over ``domain`` in batches, placed in a ``[users, n_items]``
    matrix (``-inf`` outside the domain); returns it and the seconds taken."""
    import torch

    items = data.domain_items(domain)
    out = np.full((len(users), data.n_items), -np.inf, dtype=np.float32)
    start = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(users), EVAL_BATCH):
            batch = torch.from_numpy(users[lo : lo + EVAL_BATCH])
            out[lo : lo + len(batch), items] = model.scores(batch, domain).numpy()
    return out, time.perf_counter() - start


# ---- 2. one process per model -------------------------------------------------------------------
def target_domain(split: str) -> str:
    from gnn.rec.data import COLD_SUFFIX

    return f"{DOMAIN}{COLD_SUFFIX}" if split == "cold_items" else DOMAIN


def recbole_config(model: str, args: argparse.Namespace, data_path: Path) -> dict[str, Any]:
    """RecBole overrides for a peer run: our files, our shared settings, CPU, no early stopping."""
    from gnn.rec.baselines import BaselineConfig

    ours = BaselineConfig()
    config: dict[str, Any] = {
        "data_path": str(data_path),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {
            "inter": ["user_id", "item_id"],
            "user": ["user_id"],
            "item": ["item_id"],
            "kg": ["head_id", "relation_id", "tail_id"],
            "link": ["item_id", "entity_id"],
        },
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"},
        "use_gpu": False,
        "seed": args.seed,
        "reproducibility": True,
        "epochs": args.epochs,
        "eval_step": 0,
        "train_batch_size": ours.batch_size,
        "learning_rate": ours.lr,
        "embedding_size": ours.dim,
        "show_progress": False,
        "checkpoint_dir": str(data_path / "saved"),
    }
    config |= {"LightGCN": {"n_layers": ours.layers}, "KGIN": {"context_hops": ours.layers}}.get(model, {})
    return config


def run_process(command: list[str], job: dict[str, Any], work: Path, cwd: Path) -> dict[str, Any]:
    """Run one model process on ``job`` (written to ``work/job.json``); its result JSON, with its
    scores (``np.load`` of ``job["scores"]``) under ``_scores`` when it wrote any."""
    work.mkdir(parents=True, exist_ok=True)
    job = job | {"result": str(work / "result.json"), "scores": str(work / "scores.npy")}
    (work / "job.json").write_text(json.dumps(job, indent=2))
    log = work / "process.log"
    with log.open("w") as out:
        done = subprocess.run(
            [*command, str(work / "job.json")], cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise MokgError(
            f"{' '.join(command[:2])} failed (exit {done.returncode}); last lines of {log}:\n{tail}"
        )
    result: dict[str, Any] = json.loads((work / "result.json").read_text())
    if Path(job["scores"]).is_file():
        result["_scores"] = np.load(job["scores"])
    return result


@dataclass(frozen=True)
class SplitFiles:
    """One split as the model processes see it: its folder (benchmark files, ``data.pkl``), the
    target domain, the test users (RecData rows, sorted) and the tokens of users and items."""

    folder: Path
    domain: str
    users: np.ndarray
    user_tokens: list[str]
    item_tokens: list[str]


def run_model(name: str, split: SplitFiles, args: argparse.Namespace) -> dict[str, Any]:
    """Train and score one model (``RecBole:NAME`` or one of ours) in its own process."""
    work = split.folder / name.replace(":", "-")
    job: dict[str, Any] = {"threads": args.threads}
    if name.startswith("RecBole:"):
        model = name.partition(":")[2]
        job |= {
            "kind": "peer",
            "model": model,
            "dataset": NAME,
            "config": recbole_config(model, args, split.folder),
            "users": split.user_tokens,
            "items": split.item_tokens,
        }
        return run_process([str(args.peer_python), str(RUNNER)], job, work, work)
    job |= {
        "model": name,
        "data": str(split.folder / "data.pkl"),
        "domain": split.domain,
        "users": split.users.tolist(),
        "epochs": args.epochs,
        "seed": args.seed,
    }
    return run_process([sys.executable, "-m", "bench.peers", "--worker"], job, work, REPO)


def worker(job_path: Path) -> None:
    """One of our models in this process: fit on the pickled RecData, score the job's users."""
    import torch

    from gnn.rec.baselines import BaselineConfig
    from gnn.rec.experiment import MODELS
    from gnn.rec.peace import PeaceConfig

    job = json.loads(job_path.read_text())
    torch.set_num_threads(job["threads"])
    data = pickle.loads(Path(job["data"]).read_bytes())
    base = BaselineConfig(epochs=job["epochs"], seed=job["seed"])
    peace = PeaceConfig(seed=job["seed"])
    model = MODELS[job["model"]](peace, base)
    start = time.perf_counter()
    model.fit(data, [job["domain"]])
    train_s = time.perf_counter() - start
    users = np.array(job["users"], dtype=np.int64)
    scores, eval_s = score_rows(model, data, job["domain"], users)
    np.save(job["scores"], scores)
    epochs = {"MostPop": 0}.get(job["model"], base.epochs)
    if job["model"].startswith("PEACE"):
        epochs = peace.pretrain_epochs + peace.finetune_epochs
    result: dict[str, Any] = {
        "train_s": train_s,
        "epochs": epochs,
        "eval_s": eval_s,
        "eval_users": len(users),
    }
    result["peak_rss_mb"] = peak_rss_mb()
    result["torch"] = torch.__version__
    Path(job["result"]).write_text(json.dumps(result, indent=2))


# ---- the run ------------------------------------------------------------------------------------
def ml100k_dir() -> Path:
    """The wheel's ``recbole/dataset_example/ml-100k`` (recbole is installed --no-deps in .venv)."""
    import importlib.util

    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the recbole wheel is not installed here: `make test` (or pip install --no-deps recbole==1.2.1)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / DOMAIN


def load_store(root: Path) -> Any:
    """ML-100K and its KG from the wheel into a new embedded store at ``root`` (open; close it)."""
    from graph.store import StoreConfig, open_store
    from loaders.readers import RecBoleReader, ingest_dataset

    store = open_store(StoreConfig(path=root), create=True)
    dataset = RecBoleReader().read(ml100k_dir())
    with store.run_context("load", dataset.source) as run_id:
        ingest_dataset(store, dataset, run_id)
    return store


def run_split(
    split: str, store: Any, work: Path, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every model of ``args.models`` on one split: the table's rows and what the split was."""
    from gnn.rec.data import RecDataConfig, load_rec_data
    from gnn.rec.evaluate import evaluate_domain

    data = load_rec_data(
        store, RecDataConfig(split=cast("SplitKind", split), kg=True, features=False, seed=args.seed)
    )
    folder = work / split
    wheel = ml100k_dir()
    files = write_benchmark(data, folder, DOMAIN, read_inter(wheel / f"{DOMAIN}.inter"), kg_dir=wheel)
    (folder / "data.pkl").write_bytes(pickle.dumps(data))
    domain = target_domain(split)
    users = np.unique(data.test_in(domain)[0])
    user_tokens = tokens([data.user_ids[u] for u in users], f"{DOMAIN}:u:")
    job = SplitFiles(folder, domain, users, user_tokens, tokens(data.item_ids, f"{DOMAIN}:i:"))
    rows, runs = [], {}
    for name in args.models:
        print(f"[{split}] {name} ...", file=sys.stderr, flush=True)
        result = runs[name] = run_model(name, job, args)
        model = SavedScores(name, users, result.pop("_scores"))
        model.fit(data, [domain])
        metrics = evaluate_domain(model, data, domain)
        rows.append(_row(split, name, metrics, result))
        print(
            f"[{split}] {name}: NDCG@10 {metrics['NDCG@10']:.4f}, fit {result['train_s']:.1f} s",
            file=sys.stderr,
        )
    info = {
        "split": data.split_info,
        "domain": domain,
        "test_users": len(users),
        "files": {p.name: sum(1 for _ in p.open()) - 1 for p in sorted(files.iterdir()) if p.is_file()},
        "graph_version": data.graph_version,
        "runs": runs,  # each process's own record: seconds, peak MB, versions, RecBole's own metrics
    }
    return rows, info


def _row(split: str, name: str, metrics: dict[str, float], result: dict[str, Any]) -> dict[str, Any]:
    side, _, model = name.rpartition(":")
    epochs = int(result["epochs"])
    return {
        "split": split,
        "model": model,
        "side": side or "mokg",
        **{k: metrics[k] for k in ("NDCG@10", "HR@10", "NDCG@20", "HR@20", "MRR", "AUC", "users")},
        "s_per_epoch": result["train_s"] / epochs if epochs else float("nan"),
        "train_s": result["train_s"],
        "epochs": epochs,
        "eval_users_per_s": result["eval_users"] / result["eval_s"] if result["eval_s"] else float("nan"),
        "peak_mb": result["peak_rss_mb"],
        "recbole_own_ndcg10": result.get("recbole_own_test", {}).get("ndcg@10", float("nan")),
    }


def run_anchor(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """RecBole's quick-start BPR on ml-100k with its own protocol (see the runner)."""
    config = {"use_gpu": False, "checkpoint_dir": str(work / "saved"), "show_progress": False}
    job = {"kind": "anchor", "threads": args.threads, "config": config}
    result = run_process([str(args.peer_python), str(RUNNER)], job, work, work)
    ndcg = result["test_result"]["ndcg@10"]
    result["reproduced"] = within(ndcg, PUBLISHED_NDCG10)
    return result


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  make peers                                  # build .venv-peers, then the default run\n"
            "  python -m bench.peers --peer-python .venv-peers/bin/python --epochs 5 --no-anchor\n"
            "  python -m bench.peers --peer-python .venv-peers/bin/python --split leave_last_out "
            "--models LightGCN RecBole:LightGCN\n"
            "  --models also takes other RecBole general or knowledge-aware models (RecBole:CKE) and\n"
            "  the rest of ours from `mokg eval rec` (LightGCN-joint, EMCDR, PEACE, ...); only the\n"
            "  default six are exercised by `make peers`."
        ),
    )
    ap.add_argument("--out", type=Path, default=Path("bench/out/peers"), help="results folder (replaced)")
    ap.add_argument(
        "--split",
        nargs="+",
        default=["leave_last_out", "cold_items"],
        choices=["leave_last_out", "cold_items"],
    )
    ap.add_argument("--epochs", type=int, default=30, help="training epochs of every model, both sides")
    ap.add_argument("--seed", type=int, default=0, help="seed of every model and of the cold_items split")
    ap.add_argument(
        "--peer-python",
        type=Path,
        default=Path(".venv-peers/bin/python"),
        help="python with recbole (make peers)",
    )
    ap.add_argument(
        "--models", nargs="+", default=[*OURS, *PEERS], help="ours by name, RecBole's as RecBole:NAME"
    )
    ap.add_argument(
        "--anchor", action=argparse.BooleanOptionalAction, default=True, help="RecBole quick-start BPR"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of every model process (1: fastest on a shared 2-core machine)",
    )
    ap.add_argument(
        "--keep", type=Path, default=None, help="keep the benchmark files, scores and logs in this new folder"
    )
    ap.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> pd.DataFrame | None:
    args = parse(argv)
    if args.worker is not None:
        worker(args.worker)
        return None
    _check(args)
    command = "python -m bench.peers " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    work = Path(tempfile.mkdtemp(prefix="mokg-peers-")) if args.keep is None else args.keep
    try:
        return _run(args, work, command)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _check(args: argparse.Namespace) -> None:
    from gnn.rec.experiment import MODELS

    needs_peer = args.anchor or any(m.startswith("RecBole:") for m in args.models)
    if needs_peer and not args.peer_python.is_file():
        raise InputError(f"no peer python at {args.peer_python}: run `make peers` (it builds .venv-peers)")
    unknown = [m for m in args.models if not m.startswith("RecBole:") and m not in MODELS]
    if unknown:
        raise InputError(
            f"unknown models {unknown}: ours are {', '.join(MODELS)}; RecBole's are RecBole:NAME"
        )
    args.peer_python = args.peer_python.absolute()


def _run(args: argparse.Namespace, work: Path, command: str) -> pd.DataFrame:
    started = time.perf_counter()
    store = load_store(work / "graph")
    rows: list[dict[str, Any]] = []
    splits: dict[str, Any] = {}
    try:
        for split in args.split:
            split_rows, splits[split] = run_split(split, store, work, args)
            rows += split_rows
    finally:
        store.close()
    anchor = run_anchor(work / "anchor", args) if args.anchor else None
    frame = pd.DataFrame(rows)
    table = report(frame, anchor, command)
    meta = {
        "command": command,
        "code": _code_version(),
        "seed": args.seed,
        "epochs": args.epochs,
        "threads": args.threads,
        "models": args.models,
        "recbole_configs": {
            m: recbole_config(m.partition(":")[2], args, Path("SPLIT_DIR")) for m in args.models if ":" in m
        },
        "baseline_config": _baseline(args),
        "splits": splits,
        "anchor": anchor,
        "seconds": time.perf_counter() - started,
    }
    write_outputs(args.out, frame, table, meta)
    print(table)
    print(f"wrote {args.out}/{{{','.join(OUTPUTS)}}} in {meta['seconds']:.0f} s")
    return frame


def _code_version() -> str:
    """``git describe`` of this checkout (``-dirty`` when it has changes), or ``unknown``."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def _baseline(args: argparse.Namespace) -> dict[str, Any]:
    from gnn.rec.baselines import BaselineConfig

    return BaselineConfig(epochs=args.epochs, seed=args.seed).as_dict()


if __name__ == "__main__":
    try:
        main()
    except MokgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
