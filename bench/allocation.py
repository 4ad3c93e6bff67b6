"""GreenFlow allocation benchmark (issue 20; run: `python -m bench.allocation --help`).

In one run, on synthetic traffic (:func:`consumers.allocation.synthetic.synthetic_outcomes`,
``--requests`` today and as many yesterday) or on saved chain outcomes (``--outcomes DIR``, as
written by ``ChainOutcomes.save``), with numpy/BLAS and torch on ``--threads`` threads:

1. the day is replayed through GreenFlow's dynamic primal-dual allocator at ``--budget`` (a share of
   the most expensive chain's cost, as ``mokg allocate simulate``'s;
   :func:`consumers.allocation.simulate.run_simulation`), which fits the reward estimator on
   yesterday's exploration log and yields the allocator at the day's last ``λ``;
2. decision overhead per request: :meth:`~consumers.allocation.primal_dual.Allocator.choose` on each
   of ``--decisions`` request rows in turn (the serving path: one features row in, one chain index
   out) and :meth:`~consumers.allocation.primal_dual.Allocator.choose_batch` on all of them in one
   call; ``--rounds`` rounds each, interleaved, median; µs per request (goal: ``choose`` < 50 µs);
   and the dual update (D3) of :mod:`consumers.allocation.pacing` that sets ``λ`` before each
   request (:func:`time_pacing`: the best response at every price of its grid, vectorised, and the
   per-request loop: price, choice, spend), and the serving path with the pacing plan that the
   replay saves, :meth:`~consumers.allocation.primal_dual.Allocator.choose_at` one request at a
   time (estimate, (D3) price, choice, the best responses on the grid, spend; goal < 50 µs too);
3. end-to-end requests/s of the cascade, per core: at the budget (the chains the replay chose) and
   with the most expensive chain for every request, and their ratio. **Computed** for every
   source: from the outcomes' ``cpu_seconds`` per chain (synthetic: nominal, FLOPs / 5 GFLOP/s +
   50 µs; the world's and MovieLens's: measured by the cascade) as ``1 / (mean CPU s of the chosen
   chains + decision overhead)``. **Measured** on a world (``--world W --store S``): the cascade
   (``--cascade``, default ``quick``) is trained here and its outcomes built, or read from the cache
   folder that ``mokg eval allocation --traffic world`` uses (``--cache``); then per request
   ``Allocator.choose`` + :func:`consumers.allocation.cascade.serve` of the chain it picks, against
   :func:`~consumers.allocation.cascade.serve` of the most expensive chain, one request at a time
   on ``--serve-requests`` of today's requests, ``--rounds`` interleaved rounds, median requests/s
   of each and their ratio (:func:`cascade_throughput`).

The tables are printed and written to ``--out`` (Markdown; JSON beside), each aside and renamed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench import peak_rss_mb

if TYPE_CHECKING:
    from consumers.allocation.build import Built
    from consumers.allocation.outcomes import ChainOutcomes
    from consumers.allocation.primal_dual import Allocator

GOAL_US = 50.0


def time_decisions(allocator: Allocator, rows: np.ndarray, rounds: int) -> dict[str, Any]:
    """Median µs per request of ``choose`` (row by row) and ``choose_batch`` (all rows), interleaved."""
    single, batch = [], []
    rows = np.ascontiguousarray(rows, dtype=float)
    for _ in range(rounds):
        start = time.perf_counter()
        for row in rows:
            allocator.choose(row)
        single.append((time.perf_counter() - start) / len(rows))
        start = time.perf_counter()
        allocator.choose_batch(rows)
        batch.append((time.perf_counter() - start) / len(rows))
    choose_us, batch_us = statistics.median(single) * 1e6, statistics.median(batch) * 1e6
    return {
        "rows": len(rows),
        "choose_us": choose_us,
        "choose_batch_us": batch_us,
        "goal_met": choose_us < GOAL_US,
        "rounds_us": {"choose": [t * 1e6 for t in single], "choose_batch": [t * 1e6 for t in batch]},
    }


def time_booster(allocator: Allocator, rows: np.ndarray, rounds: int) -> dict[str, Any]:
    """hgb only, the baseline of its ONNX graph: sklearn's own ``predict`` of one request's chains,
    row by row (median µs per request over ``rounds``); nothing for the mlp."""
    booster = allocator.model.state.get("booster")
    if booster is None:
        return {}
    chains = allocator.model.state["chains"]
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for row in rows:
            booster.predict(np.hstack([np.repeat(row[None, :], len(chains), axis=0), chains]))
        times.append((time.perf_counter() - start) / len(rows))
    return {"sklearn_predict_us": statistics.median(times) * 1e6}


def time_pacing(allocator: Allocator, rows: np.ndarray, times: np.ndarray, rounds: int) -> dict[str, Any]:
    """Median µs per request of (D3) over ``rows`` [R, F] arriving at ``times`` [R]: the choice table
    (every request's best response at every price) and the pacing loop, one window's budget per hour
    at 60 % of the max chain's cost, yesterday's curve taken from the same rows."""
    from consumers.allocation.pacing import SpendCurve, choice_table, paced_run
    from consumers.allocation.traffic import DAY_S, window_counts

    pred, cost = allocator.model.predict(np.asarray(rows, float)), allocator.cost
    curve = SpendCurve.build(pred, cost)
    counts = window_counts(times, 3600, 24).astype(float)
    budgets = 0.6 * float(cost.max()) * counts
    table_s, loop_s = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        table = choice_table(pred, cost, curve.grid)
        table_s.append((time.perf_counter() - start) / len(rows))
        start = time.perf_counter()
        paced_run(pred, cost, times, budgets, curve, counts, 3600, 60, table=table)
        loop_s.append((time.perf_counter() - start) / len(rows))
    out = {"table_us": statistics.median(table_s) * 1e6, "loop_us": statistics.median(loop_s) * 1e6}
    if allocator.plan is not None:  # serving: Allocator.choose_at, the saved plan, one request at a time
        lam, offsets = allocator.lam, np.asarray(times, float) % DAY_S
        live_s = []
        for _ in range(rounds):
            allocator.pace(allocator.plan)
            start = time.perf_counter()
            for row, t in zip(rows, offsets, strict=True):
                allocator.choose_at(row, float(t))
            live_s.append((time.perf_counter() - start) / len(rows))
        allocator.set_lambda(lam)
        out["choose_at_us"] = statistics.median(live_s) * 1e6
    return out


def cascade_throughput(
    built: Built | None,
    rows: ChainOutcomes,
    allocator: Allocator,
    n_requests: int,
    rounds: int,
    cost_unit: str = "flops",
) -> dict[str, Any] | None:
    """End-to-end requests/s through the real cascade (module doc, 3.): the first ``n_requests``
    of ``rows`` (requests of ``built``), each ``allocator.choose`` + ``serve`` of its chain, against
    ``serve`` of the most expensive chain; ``rounds`` interleaved rounds, median. None without a
    cascade (synthetic traffic, saved outcomes)."""
    import torch

    from consumers.allocation.cascade import serve

    if built is None:
        return None
    user_of = dict(zip(built.outcomes.request_ids, built.users, strict=True))
    take = min(n_requests, rows.n_requests)
    users = [torch.tensor([int(user_of[r])]) for r in rows.request_ids[:take]]
    features = np.ascontiguousarray(rows.features[:take], dtype=float)
    chains, top = rows.chains, int(np.argmax(rows.cost(cost_unit)))
    green: list[float] = []
    dearest: list[float] = []
    picked: list[int] = []
    with torch.no_grad():
        serve(built.cascade, chains[top], users[0])  # warm-up
        for _ in range(rounds):
            picked.clear()
            start = time.perf_counter()
            for x, u in zip(features, users, strict=True):
                c = allocator.choose(x)
                serve(built.cascade, chains[c], u)
                picked.append(c)
            green.append(take / (time.perf_counter() - start))
            start = time.perf_counter()
            for u in users:
                serve(built.cascade, chains[top], u)
            dearest.append(take / (time.perf_counter() - start))
    g, d = statistics.median(green), statistics.median(dearest)
    cost = rows.cost(cost_unit)
    return {
        "requests": take,
        "rounds": rounds,
        "rows": {
            "max chain, serve": {"requests_per_s": d, "over_max": 1.0, "rounds": dearest},
            "greenflow, choose + serve": {"requests_per_s": g, "over_max": g / d, "rounds": green},
        },
        "cost_share": float(cost[picked].mean() / cost[top]),
        "max_chain": chains[top].name,
    }


def throughput_rows(
    outcomes: ChainOutcomes, choices: np.ndarray, decision: dict[str, Any], cost_unit: str = "flops"
) -> dict[str, Any]:
    """Requests/s per core from the chains' CPU seconds (module doc, 3.), by policy; the most
    expensive chain by ``cost_unit``."""
    cpu = outcomes.cpu_seconds
    top = int(np.argmax(outcomes.cost(cost_unit)))
    rewards = outcomes.rewards
    chosen_cpu = float(cpu[choices].mean())
    kept = float(rewards[np.arange(len(choices)), choices].sum() / rewards[:, top].sum())
    rows = {
        "max chain": {"cpu_s": float(cpu[top]), "decision_us": 0.0, "reward_kept": 1.0},
        "greenflow, choose": {"cpu_s": chosen_cpu, "decision_us": decision["choose_us"], "reward_kept": kept},
        "greenflow, choose_batch": {
            "cpu_s": chosen_cpu,
            "decision_us": decision["choose_batch_us"],
            "reward_kept": kept,
        },
    }
    for row in rows.values():
        row["requests_per_s"] = 1.0 / (row["cpu_s"] + row["decision_us"] * 1e-6)
    base = rows["max chain"]["requests_per_s"]
    for row in rows.values():
        row["over_max"] = row["requests_per_s"] / base
    return rows


def markdown(r: dict[str, Any]) -> str:
    d, e = r["decision"], r["end_to_end"]
    goal = "met" if d["goal_met"] else "not met"
    lines = [
        f"`{r['command']}`",
        "",
        f"{r['source']}: {r['requests']:,} requests today, {r['chains']} chains; budget "
        f"{r['budget']:.0%} of the most expensive chain's cost ({r['cost_unit']}); "
        f"replay spent {r['spend_share']:.1%} of it. "
        f"{r['threads']} thread(s), {r['rounds']} round(s), median; load average {r['loadavg']:.2f} on "
        f"{r['cpus']} CPUs.",
        "",
        f"| decision overhead ({d['rows']:,} requests; estimator {r['estimator']}) | µs per request |",
        "|---|---|",
        *(
            [
                f"| sklearn's HistGradientBoostingRegressor.predict, one row's chains (the graph's baseline) "
                f"| {d['sklearn_predict_us']:.2f} |"
            ]
            if "sklearn_predict_us" in d
            else []
        ),
        f"| Allocator.choose, one row at a time (goal < {GOAL_US:g} µs: {goal}) | {d['choose_us']:.2f} |",
        f"| Allocator.choose_batch, all rows in one call | {d['choose_batch_us']:.3f} |",
        f"| (D3) λ before each request: best responses on the price grid, all rows at once "
        f"| {d['table_us']:.2f} |",
        f"| (D3) λ before each request: the pacing loop (price, choice, spend) | {d['loop_us']:.2f} |",
        *(
            [
                f"| Allocator.choose_at, one row at a time: estimate, (D3) price, choice, spend "
                f"(goal < {GOAL_US:g} µs: {'met' if d['choose_at_us'] < GOAL_US else 'not met'}) "
                f"| {d['choose_at_us']:.2f} |"
            ]
            if "choose_at_us" in d
            else []
        ),
        "",
        "| end to end, per core | CPU s / request (chains) | decision µs | requests/s | / max chain "
        "| reward kept |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in e["rows"].items():
        lines.append(
            f"| {name} | {row['cpu_s']:.3g} | {row['decision_us']:.2f} | {row['requests_per_s']:,.0f} "
            f"| {row['over_max']:.2f}× | {row['reward_kept']:.1%} |"
        )
    m = e["measured"]
    if m is not None:
        lines += [
            "",
            f"| end to end, measured ({m['requests']:,} requests, one by one) | requests/s | / max chain |",
            "|---|---|---|",
        ]
        for name, row in m["rows"].items():
            lines.append(f"| {name} | {row['requests_per_s']:,.0f} | {row['over_max']:.2f}× |")
    lines += ["", f"End to end: {e['method']}", "", f"Peak RSS: {r['peak_rss_mb']:.0f} MB", ""]
    return "\n".join(lines)


FLAGS: list[tuple[str, type, Any, str]] = [
    ("--traffic", str, "synthetic", "synthetic, or world (the cascade on --world, needs --store)"),
    ("--outcomes", Path, None, "a folder written by ChainOutcomes.save (default: synthetic traffic)"),
    ("--world", Path, None, "a world directory (implies --traffic world): serve the real cascade"),
    ("--store", Path, None, "world: the embedded store the world was ingested into"),
    ("--cascade", str, "quick", "world: a cascade preset (full, quick, tiny) or a JSON file of its config"),
    ("--cache", Path, Path("mokg-data/allocation/outcomes"), "world: the chain outcomes' cache folder"),
    ("--serve-requests", int, 300, "world: today's requests served per round through the cascade"),
    ("--requests", int, 20_000, "synthetic requests today (and as many yesterday)"),
    ("--budget", float, 0.6, "share in (0, 1] of the most expensive chain's cost per request"),
    ("--cost", str, "flops", "cost unit of the budget: flops or cpu_seconds"),
    ("--estimator", str, "mlp", "the reward estimator: mlp, or hgb (boosted trees served by ONNX Runtime)"),
    ("--epochs", int, 20, "epochs of the reward estimator (mlp; hgb: 10 trees an epoch, at most 500)"),
    ("--decisions", int, 10_000, "request rows timed per round"),
    ("--rounds", int, 5, "repetitions of every timing (median)"),
    ("--seed", int, 0, "traffic, exploration log and estimator"),
    ("--threads", int, 1, "torch and numpy/BLAS threads"),
    ("--out", Path, Path("bench/out/allocation.md"), "Markdown table (the JSON beside it)"),
]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.allocation", description=__doc__)
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    for flag, kind, default, help_ in FLAGS:
        ap.add_argument(flag, type=kind, default=default, help=help_)
    return ap


def _traffic(args: argparse.Namespace) -> tuple[ChainOutcomes, ChainOutcomes | None, Built | None]:
    from consumers.allocation.build import cascade_config, trained_world
    from consumers.allocation.outcomes import ChainOutcomes
    from consumers.allocation.synthetic import synthetic_outcomes
    from graph.store import StoreConfig, open_store

    if args.outcomes is not None:
        return ChainOutcomes.load(args.outcomes), None, None
    if args.traffic == "world":
        config = cascade_config(args.cascade)
        with open_store(StoreConfig(path=args.store)) as store:
            built = trained_world(store, args.world, config, args.cache, lambda m: print(m, file=sys.stderr))
        return built.outcomes, None, built
    today = synthetic_outcomes(args.requests, args.seed + 1, day=1)
    return today, synthetic_outcomes(args.requests, args.seed, campaign_hour=None, day=0), None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from consumers.allocation.config import ESTIMATORS, AllocationConfig, RewardConfig
    from consumers.allocation.simulate import SimulationRequest, run_simulation
    from graph import files

    ap = parser()
    args = ap.parse_args(argv)
    if min(args.requests, args.epochs, args.decisions, args.rounds, args.threads, args.serve_requests) < 1:
        ap.error("--requests, --epochs, --decisions, --rounds, --threads and --serve-requests must be >= 1")
    if args.estimator not in ESTIMATORS:
        ap.error(f"--estimator is one of {', '.join(ESTIMATORS)}, got {args.estimator!r}")
    if args.world is not None:
        args.traffic = "world"
    if args.traffic not in ("synthetic", "world"):
        ap.error(f"--traffic is synthetic or world, got {args.traffic!r}")
    if args.traffic == "world" and (args.world is None or args.store is None):
        ap.error("--traffic world needs --world DIR and --store DIR (the store the world was ingested into)")
    if not 0 < args.budget <= 1:
        ap.error(f"--budget is a share in (0, 1] of the most expensive chain's cost, got {args.budget}")
    torch.set_num_threads(args.threads)
    command = "python -m bench.allocation " + shlex.join(argv if argv is not None else sys.argv[1:])
    config = AllocationConfig(
        cost_unit=args.cost, seed=args.seed, reward=RewardConfig(args.estimator, epochs=args.epochs)
    )
    today, yesterday, built = _traffic(args)
    with threadpool_limits(limits=args.threads):
        sim = run_simulation(today, SimulationRequest(args.budget, config, command), None, yesterday)
        rows = sim.today  # the requests replayed: today's, or a split of --outcomes
        decision = time_decisions(sim.allocator, rows.features[: args.decisions], args.rounds)
        decision.update(time_booster(sim.allocator, rows.features[: min(args.decisions, 200)], args.rounds))
        decision.update(time_pacing(sim.allocator, rows.features, rows.times, args.rounds))
        measured = cascade_throughput(built, rows, sim.allocator, args.serve_requests, args.rounds, args.cost)
    cpu = "nominal, FLOPs / 5 GFLOP/s + 50 µs" if rows.source == "synthetic" else "measured by the cascade"
    method = (
        f"computed from the outcomes' cpu_seconds per chain ({cpu}) as 1 / (mean CPU s of the chosen "
        "chains + decision overhead); "
    )
    if measured is None:
        method += "the cascade itself was not run (give --world and --store to serve it)."
    else:
        method += (
            f"measured: the trained cascade ({args.cascade}) served one request at a time, wall clock, "
            f"Allocator.choose + serve of its chain (mean {measured['cost_share']:.0%} of the max chain's "
            f"{args.cost}) against serve of {measured['max_chain']}; {args.rounds} interleaved round(s), "
            "median."
        )
    end_to_end = {
        "rows": throughput_rows(rows, sim.choices, decision, args.cost),
        "measured": measured,
        "method": method,
    }
    r: dict[str, Any] = {"command": command, "source": rows.source, "requests": rows.n_requests}
    r.update(
        estimator=args.estimator,
        chains=len(rows.chains),
        budget=args.budget,
        cost_unit=args.cost,
        threads=args.threads,
    )
    r.update(rounds=args.rounds, spend_share=sim.summary["spend_share"], lam=sim.allocator.lam)
    r.update(decision=decision, end_to_end=end_to_end, simulation=sim.summary)
    r["cpus"], r["loadavg"], r["peak_rss_mb"] = os.cpu_count(), os.getloadavg()[0], peak_rss_mb()
    text = markdown(r)
    print(text, end="")
    files.write_text(args.out, text)
    files.write_text(args.out.with_suffix(".json"), json.dumps(r, indent=2, default=str))
    print(f"results: {args.out}, {args.out.with_suffix('.json')}")
    return r


if __name__ == "__main__":
    main()
