"""Density benchmark (issue 19; run: `python -m bench.density --help`).

In one run, on one data set of :mod:`consumers.density.data` (default: ``checkerboard``, 20,000
rows: 16,000 train), with torch on ``--threads`` threads:

1. training time: ours (:func:`consumers.density.model.fit`: the ODE labels ``pairs`` noise points,
   then the MLP is trained) against zuko's NSF (:mod:`consumers.density.baselines.flows`, early
   stopping on the valid split) on the same splits, each fit ``--rounds`` times in turn (interleaved,
   so a noisy neighbour hits both alike), median wall time; ratio ours / NSF (goal <= 0.2). Ours runs
   once per ``--ours`` config: ``paper`` (the paper's 500 Euler steps on the uniform grid) and
   ``fast`` (:data:`~consumers.density.config.FAST_LABELLING`: the eval's ``diffusion-fast``);
2. sampling time per 10,000 samples: the fitted generator (one forward pass) against the ODE it was
   taught by (the same model's ``ode_sample``), median of ``--rounds``; ratio ODE / MLP (goal >= 100);
3. bounded memory: ``--ode-points`` (1,000,000) noise points carried through the ODE in chunks of
   ``chunk`` (1,024) with ``--ode-steps`` (5) steps (the memory does not depend on the steps; the
   time is per step): seconds and the peak RSS before and after, beside the size of the result;
4. score-estimator throughput: (D4) at one time step for ``--score-points`` query points against
   ``--train-points`` training points (default 100,000: the data set is resampled with replacement
   to that size), with the paper's mini-batch (``batch_size`` of them) and with the whole data set,
   in points/s; and the peak RSS of the process after each phase.

The tables are printed and written to ``--out`` (Markdown; JSON beside).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import peak_rss_mb

GOAL_TRAIN, GOAL_SAMPLE = 0.2, 100.0


def _median_time(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_training(data: Any, args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Fit ours (each config) and NSF ``rounds`` times, interleaved; the last fit of ours is kept."""
    from consumers.density.baselines import FlowConfig
    from consumers.density.baselines.flows import Flow
    from consumers.density.config import FAST_LABELLING, DensityConfig
    from consumers.density.model import fit

    base = DensityConfig(pairs=args.pairs, seed=args.seed)
    variants = {"paper": base, "fast": replace(base, **FAST_LABELLING)}
    configs = {name: variants[name] for name in args.ours.split(",")}
    times: dict[str, list[float]] = {name: [] for name in [*configs, "nsf"]}
    nsf_epochs: list[int] = []
    fitted = None
    for _ in range(args.rounds):
        for name, config in configs.items():
            start = time.perf_counter()
            fitted = fit(data.train, config)
            times[name].append(time.perf_counter() - start)
        flow = Flow(FlowConfig(kind="nsf")).fit(data.train, data.valid, args.seed)
        times["nsf"].append(flow.fit_seconds)
        nsf_epochs.append(flow.epochs)
    nsf = statistics.median(times["nsf"])
    medians = {name: statistics.median(t) for name, t in times.items()}
    rows = {name: {"fit_s": m, "over_nsf": m / nsf} for name, m in medians.items()}
    for name in configs:
        rows[name]["goal_met"] = rows[name]["over_nsf"] <= GOAL_TRAIN
    out = {"rows": rows, "nsf_epochs": nsf_epochs, "configs": {k: v.as_dict() for k, v in configs.items()}}
    return out, fitted


def bench_sampling(model: Any, args: argparse.Namespace) -> dict[str, Any]:
    mlp = _median_time(lambda: model.sample(10_000, 1), args.rounds)
    ode = _median_time(lambda: model.ode_sample(10_000, 1), args.rounds)
    ratio = ode / mlp
    return {"mlp_s_10k": mlp, "ode_s_10k": ode, "ode_over_mlp": ratio, "goal_met": ratio >= GOAL_SAMPLE}


def bench_ode_memory(data: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The chunked ODE over ``--ode-points`` points: seconds, peak RSS before and after (MB)."""
    import torch

    from consumers.density.config import DensityConfig
    from consumers.density.ode import sample
    from consumers.density.schedule import Schedule

    c = DensityConfig()
    x = torch.as_tensor(np.asarray(data.train, dtype=np.float32))
    noise = torch.randn(args.ode_points, x.shape[1], generator=torch.Generator().manual_seed(args.seed))
    before = peak_rss_mb()
    start = time.perf_counter()
    out = sample(noise, x, Schedule(c.eps), steps=args.ode_steps, batch_size=c.batch_size, chunk=c.chunk)
    seconds = time.perf_counter() - start
    return {
        "points": args.ode_points,
        "steps": args.ode_steps,
        "chunk": c.chunk,
        "seconds": seconds,
        "seconds_per_step": seconds / args.ode_steps,
        "result_mb": out.element_size() * out.nelement() / 2**20,
        "peak_rss_before_mb": before,
        "peak_rss_after_mb": peak_rss_mb(),
    }


def bench_score(data: Any, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from consumers.density.config import DensityConfig
    from consumers.density.schedule import Schedule
    from consumers.density.score import score

    rng = np.random.default_rng(args.seed)
    train = np.asarray(data.train, dtype=np.float32)
    x = torch.as_tensor(train[rng.integers(0, len(train), args.train_points)])
    z = torch.randn(args.score_points, x.shape[1], generator=torch.Generator().manual_seed(args.seed))
    schedule, batch = Schedule(DensityConfig().eps), DensityConfig().batch_size
    rows = {}
    for name, size in (("mini-batch", min(batch, len(x))), ("whole data", len(x))):
        pick = torch.as_tensor(rng.choice(len(x), size, replace=False))

        def work(pick: torch.Tensor = pick) -> None:
            for lo in range(0, len(z), 1024):
                score(z[lo : lo + 1024], 0.5, x[pick], schedule)

        seconds = _median_time(work, args.rounds)
        rows[name] = {"batch": size, "seconds": seconds, "points_per_s": len(z) / seconds}
    return {"train_points": len(x), "score_points": len(z), "rows": rows}


def markdown(r: dict[str, Any]) -> str:
    t, s, e, m = r["training"], r["sampling"], r["score"], r["ode_memory"]
    lines = [
        f"`{r['command']}`",
        "",
        f"{r['dataset']}: {r['train_rows']} train rows, {r['dim']}-d; {r['threads']} torch thread(s), "
        f"{r['rounds']} round(s), median; load average {r['loadavg']:.2f} on {r['cpus']} CPUs.",
        "",
        "| fit | wall s | / NSF | goal ≤ 0.2 |",
        "|---|---|---|---|",
    ]
    for name, row in t["rows"].items():
        goal = "—" if name == "nsf" else ("met" if row["goal_met"] else "not met")
        lines.append(f"| {name} | {row['fit_s']:.1f} | {row['over_nsf']:.2f} | {goal} |")
    lines += [
        "",
        f"NSF stopped after {t['nsf_epochs']} epochs.",
        "",
        "| sampling (10,000) | seconds |",
        "|---|---|",
        f"| MLP generator | {s['mlp_s_10k']:.4f} |",
        f"| probability-flow ODE | {s['ode_s_10k']:.2f} |",
        f"| ODE / MLP (goal ≥ 100) | {s['ode_over_mlp']:.0f}× ({'met' if s['goal_met'] else 'not met'}) |",
        "",
        f"ODE over {m['points']:,} points in chunks of {m['chunk']:,}, {m['steps']} steps: "
        f"{m['seconds']:.1f} s ({m['seconds_per_step']:.1f} s per step); "
        f"peak RSS {m['peak_rss_before_mb']:.0f} MB before, {m['peak_rss_after_mb']:.0f} MB after "
        f"(the result itself: {m['result_mb']:.0f} MB).",
        "",
        f"| score estimator, {e['score_points']} points vs {e['train_points']} train points "
        "| batch | points/s |",
        "|---|---|---|",
    ]
    for name, row in e["rows"].items():
        lines.append(f"| {name} | {row['batch']} | {row['points_per_s']:,.0f} |")
    lines += ["", f"Peak RSS: {r['peak_rss_mb']}", ""]
    return "\n".join(lines)


FLAGS: list[tuple[str, type, Any, str]] = [
    ("--dataset", str, "checkerboard", "a data set of consumers.density.data"),
    ("--n", int, 20_000, "rows in all (80/10/10 train/valid/test)"),
    ("--ours", str, "paper,fast", "our configs to time: paper, fast (comma-separated)"),
    ("--pairs", int, 10_000, "noise points the ODE labels for the generator"),
    ("--train-points", int, 100_000, "training points the score estimator runs against"),
    ("--score-points", int, 10_000, "query points of the score-estimator timing"),
    ("--ode-points", int, 1_000_000, "points of the chunked-ODE memory check"),
    ("--ode-steps", int, 5, "ODE steps of the memory check"),
    ("--rounds", int, 1, "repetitions of every timing (median)"),
    ("--seed", int, 0, "data, models and noise"),
    ("--threads", int, 1, "torch threads"),
    ("--out", Path, Path("bench/out/density.md"), "Markdown table (the JSON beside it)"),
]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.density", description=__doc__)
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    for flag, kind, default, help_ in FLAGS:
        ap.add_argument(flag, type=kind, default=default, help=help_)
    return ap


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    from consumers.density.data import load_dataset
    from graph import files

    ap = parser()
    args = ap.parse_args(argv)
    sizes = (args.n, args.pairs, args.train_points, args.score_points, args.ode_points, args.ode_steps)
    if min(*sizes, args.rounds, args.threads) < 1:
        ap.error(
            "--n, --pairs, --train-points, --score-points, --ode-points, --ode-steps, --rounds and "
            "--threads must be >= 1"
        )
    unknown = set(args.ours.split(",")) - {"paper", "fast"}
    if unknown or not args.ours:
        ap.error(f"--ours takes paper and/or fast, got {args.ours!r}")
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.n, args.seed)
    command = "python -m bench.density " + shlex.join(argv if argv is not None else sys.argv[1:])
    r: dict[str, Any] = {"command": command, "dataset": args.dataset, "threads": args.threads}
    r.update(rounds=args.rounds, train_rows=len(data.train), dim=int(np.asarray(data.train).shape[1]))
    rss = {}
    r["training"], model = bench_training(data, args)
    rss["training"] = peak_rss_mb()
    r["ode_memory"] = bench_ode_memory(data, args)
    rss["ode"] = peak_rss_mb()
    r["sampling"] = bench_sampling(model, args)
    rss["sampling"] = peak_rss_mb()
    r["score"] = bench_score(data, args)
    rss["score"] = peak_rss_mb()
    r["cpus"], r["loadavg"] = os.cpu_count(), os.getloadavg()[0]
    r["peak_rss_mb"] = ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items())
    text = markdown(r)
    print(text, end="")
    files.write_text(args.out, text)
    files.write_text(args.out.with_suffix(".json"), json.dumps(r, indent=2))
    print(f"results: {args.out}, {args.out.with_suffix('.json')}")
    return r


if __name__ == "__main__":
    main()
