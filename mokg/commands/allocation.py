"""GreenFlow computation allocation (issue 20): `mokg eval allocation`, `mokg allocate simulate`,
`mokg allocate serve` and `mokg allocate cascade` (the cascade's chain outcomes on a world or
MovieLens-1M, :mod:`consumers.allocation.build`).

Heavy imports happen inside the commands.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from graph.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from consumers.allocation.config import AllocationConfig
    from consumers.allocation.outcomes import ChainOutcomes
    from mokg.commands import Groups

TRAFFIC = ("synthetic", "world", "movielens")


def register(groups: Groups) -> None:
    groups.eval.command("allocation")(eval_allocation)
    groups["allocate"].command("simulate")(simulate)
    groups["allocate"].command("serve")(serve)
    groups["allocate"].command("cascade")(cascade_command)


RequestsOpt = Annotated[
    int | None,
    typer.Option(
        help="Synthetic requests per day (default 100,000); world / movielens: at most this many of "
        "the cascade's requests (default: the --cascade preset's)."
    ),
]
CostOpt = Annotated[str, typer.Option(help="Cost unit: flops or cpu_seconds.")]
PacingOpt = Annotated[
    str,
    typer.Option(
        help="The pacing rule's (D3) variant: plain (the day's spend curve for every hour, Poisson "
        "arrivals) or bursty (yesterday's curve per hour, and the dispersion of arrivals widening the "
        "rate prior and the lead; for traffic that comes in bursts, as MovieLens-1M's)."
    ),
]
ExploreOpt = Annotated[
    float,
    typer.Option(help="With --outcomes, world or movielens: the share of requests that is yesterday's log."),
]
WorldOpt = Annotated[
    Path | None,
    typer.Option(
        help="--traffic world: the world directory the store was ingested from (its hidden/ click model "
        "scores the chains)."
    ),
]
PRESETS_HELP = (
    "a preset (full: 56 chains; quick: the same chains, fewer epochs and 3,000 requests, on movielens in "
    "batches of 8,192; tiny: 8 chains; full-user: full + the recall models' user vectors as request "
    "features, pair it with --estimator hgb; quick-ivf: quick with IVF recall too, 84 chains) or a JSON "
    "file of CascadeConfig fields"
)
CascadeOpt = Annotated[
    str,
    typer.Option(
        help=f"world / movielens: the cascade, {PRESETS_HELP}. Its chain outcomes are built once per "
        "config (and world and store version) into mokg-data/allocation/outcomes/ and reused by every "
        "later call, whatever its --seed."
    ),
]


def load_traffic(
    traffic: str,
    outcomes: Path | None,
    requests: int | None,
    seed: int,
    explore_share: float,
    world: Path | None = None,
    cascade: str = "quick",
) -> tuple[ChainOutcomes, ChainOutcomes | None, str]:
    """(today, yesterday or None, the options that chose them): synthetic traffic is generated
    (yesterday: a day without the campaign); world and movielens are the cascade's outcomes, built
    once per config into a cache folder (:func:`consumers.allocation.build.traffic_outcomes`)."""
    from contextlib import nullcontext

    from consumers.allocation.build import cascade_config, traffic_outcomes
    from consumers.allocation.outcomes import ChainOutcomes
    from consumers.allocation.synthetic import synthetic_outcomes
    from mokg.context import open_store

    if traffic not in TRAFFIC:
        raise InputError(f"unknown --traffic {traffic!r}; choose from {', '.join(TRAFFIC)}")
    if outcomes is not None:
        today = ChainOutcomes.load(outcomes)
        if traffic != "synthetic" and today.source != traffic:
            raise InputError(
                f"--traffic {traffic} but {outcomes} holds {today.source} requests; drop --traffic"
            )
        return today, None, f"--outcomes {shlex.quote(str(outcomes))} --explore-share {explore_share}"
    if traffic == "synthetic":
        n = 100_000 if requests is None else requests
        today = synthetic_outcomes(n, seed + 1, day=1)
        yesterday = synthetic_outcomes(n, seed, campaign_hour=None, day=0)
        return today, yesterday, f"--traffic synthetic --requests {n}"
    config = cascade_config(cascade, traffic, max_requests=requests)
    if traffic == "world" and world is None:
        raise InputError("--traffic world needs --world DIR: the world directory the store was ingested from")
    with open_store() if traffic == "world" else nullcontext() as store:
        today, _ = traffic_outcomes(traffic, config, store, world, say=lambda m: typer.echo(m, err=True))
    source = f"--traffic {traffic}" + (f" --world {shlex.quote(str(world))}" if traffic == "world" else "")
    source += f" --cascade {shlex.quote(cascade)}" + (f" --requests {requests}" if requests else "")
    return today, None, f"{source} --explore-share {explore_share}"


def _config(
    cost: str,
    budget_split: str,
    explore_share: float,
    estimator: str,
    seed: int,
    pacing: str = "plain",
    **more: Any,
) -> AllocationConfig:
    """The options every allocation command shares, as an :class:`AllocationConfig` (``more``: its
    other fields)."""
    from consumers.allocation.config import PACINGS, AllocationConfig, RewardConfig

    if pacing not in PACINGS:
        raise InputError(f"unknown --pacing {pacing!r}; choose from {', '.join(PACINGS)}")
    reward = RewardConfig(kind=estimator, seed=seed)
    return AllocationConfig(
        **PACINGS[pacing],  # type: ignore[arg-type]
        cost_unit=cost,
        budget_split=budget_split,
        explore_share=explore_share,
        seed=seed,
        reward=reward,
        **more,
    )


def _check_requests(requests: int | None, threads: int) -> None:
    if (requests is not None and requests < 10) or threads < 1:
        raise InputError(f"--requests must be ≥ 10 and --threads ≥ 1, got {requests} and {threads}")


def eval_allocation(
    traffic: Annotated[
        str,
        typer.Option(
            help="Where the requests come from: synthetic (a generated day with known structure and a "
            "3× campaign hour; yesterday is a second day without the campaign); world (needs --world) "
            "and movielens: the cascade's requests and true rewards (--cascade), yesterday a random "
            "--explore-share of them."
        ),
    ] = "synthetic",
    outcomes: Annotated[
        Path | None,
        typer.Option(
            help="A folder written by ChainOutcomes.save (the cascade's requests, chain costs and true "
            "rewards); replaces --traffic. Yesterday is a random --explore-share of its requests."
        ),
    ] = None,
    requests: RequestsOpt = None,
    world: WorldOpt = None,
    cascade: CascadeOpt = "quick",
    budget_saving: Annotated[
        float, typer.Option(help="The budget saves this share of the most expensive chain's cost.")
    ] = 0.4,
    cost: CostOpt = "flops",
    budget_split: Annotated[
        str,
        typer.Option(
            help="The day's budget per hour ∝ traffic (a perfect forecast), forecast (yesterday's "
            "traffic) or flat; adherence is reported under all three."
        ),
    ] = "traffic",
    estimator: Annotated[str, typer.Option(help="Reward estimator: mlp or hgb.")] = "mlp",
    pacing: PacingOpt = "plain",
    explore_share: ExploreOpt = 0.5,
    log: Annotated[
        str,
        typer.Option(
            help="Exploration log: random (the paper's: one uniformly random chain per request of "
            "yesterday, only its reward seen) or every (every chain's reward seen: a simulator's upper "
            "bound on what logging can buy)."
        ),
    ] = "random",
    seed: Annotated[int, typer.Option(help="Seeds the traffic, the exploration log and the models.")] = 0,
    out: Annotated[
        Path,
        typer.Option(
            help="Directory for allocation_<source>.md (with its command), _policies/_frontier/_windows/"
            "_adherence/_energy/_calibration.csv, _frontier.png and _config.json."
        ),
    ] = Path("mokg-data/eval/allocation"),
    threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
) -> None:
    """Per policy at the budget (every fixed chain, random, DCAF's static λ, GreenFlow's dynamic
    primal-dual, the offline LP optimum): spend, reward kept against the most expensive chain and
    against the optimum; the revenue-computation frontier; spend against budget per hour; the
    reward estimator's held-out quality; an energy and carbon estimate.

    The claim to check (arXiv:2312.16176): about 40% less computation at unchanged reward.

    Examples: mokg eval allocation --traffic synthetic --budget-saving 0.4 --out /tmp/alloc;
    mokg eval allocation --traffic world --world mokg-data/world-demo --cascade quick --out results/
    """
    _check_requests(requests, threads)
    config = _config(
        cost, budget_split, explore_share, estimator, seed, pacing, budget_saving=budget_saving, log=log
    )
    import torch

    from consumers.allocation.run import run, write_results
    from graph.progress import Progress

    torch.set_num_threads(threads)
    today, yesterday, source = load_traffic(traffic, outcomes, requests, seed, explore_share, world, cascade)
    with Progress() as board:
        results = run(today, config, yesterday=yesterday, progress=board.stages(""), source=source)
    written = write_results(results, out, config.as_dict())
    typer.echo(results.markdown())
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def simulate(
    budget: Annotated[
        float,
        typer.Option(
            help="The day's budget as a share in (0, 1] of what the most expensive chain would spend: "
            "0.6 allows 60% of its cost per request on average (a 40% saving), in the --cost unit."
        ),
    ],
    traffic: Annotated[
        str,
        typer.Option(
            help="synthetic (generated; yesterday is a day without the campaign), or world (needs "
            "--world) / movielens: the cascade's requests (--cascade), built once and reused."
        ),
    ] = "synthetic",
    outcomes: Annotated[
        Path | None,
        typer.Option(
            help="A folder written by ChainOutcomes.save; yesterday is a random --explore-share of it."
        ),
    ] = None,
    requests: RequestsOpt = None,
    world: WorldOpt = None,
    cascade: CascadeOpt = "quick",
    cost: CostOpt = "flops",
    budget_split: Annotated[
        str,
        typer.Option(help="The day's budget per window ∝ traffic, forecast (yesterday's traffic) or flat."),
    ] = "traffic",
    window_s: Annotated[float, typer.Option(help="Budget window in seconds.")] = 3600.0,
    control_s: Annotated[
        float, typer.Option(help="Seconds between progress reports and (D2) steps (divides --window-s).")
    ] = 60.0,
    step_size: Annotated[float, typer.Option(help="η of the step rule (D2); pacing (D3) has none.")] = 0.5,
    estimator: Annotated[
        str,
        typer.Option(help="Reward estimator: mlp or hgb (saved as an ONNX graph, served by ONNX Runtime)."),
    ] = "mlp",
    pacing: PacingOpt = "plain",
    explore_share: ExploreOpt = 0.5,
    seed: Annotated[int, typer.Option(help="Seeds the traffic, the exploration log and the estimator.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory for simulate_<source>_windows.csv (per window) and simulate_<source>.json."
        ),
    ] = None,
    save_allocator: Annotated[
        Path | None,
        typer.Option(help="Write the allocator at the day's last λ here (.npz) for mokg allocate serve."),
    ] = None,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
) -> None:
    """Replay a day of requests through GreenFlow's dynamic primal-dual allocator at --budget, with a
    live view of spend against budget and λ; then spend against budget per window and the totals
    (reward, spend, the reward's share of the most expensive chain's).

    Examples: mokg allocate simulate --budget 0.6 --requests 20000;
    mokg allocate simulate --budget 0.6 --outcomes mokg-data/outcomes/world --out /tmp/sim
    """
    _check_requests(requests, threads)
    from consumers.allocation.simulate import SimulationRequest

    timing = {"window_s": window_s, "control_s": control_s, "step_size": step_size}
    config = _config(cost, budget_split, explore_share, estimator, seed, pacing, **timing)
    SimulationRequest(budget, config)  # checks --budget before any work
    import torch

    from consumers.allocation.simulate import SpendProgress, run_simulation, write_simulation
    from graph.progress import Progress

    torch.set_num_threads(threads)
    today, yesterday, source = load_traffic(traffic, outcomes, requests, seed, explore_share, world, cascade)
    command = (
        f"mokg allocate simulate --budget {budget} {source} --cost {cost} --budget-split {budget_split} "
        f"--window-s {window_s:g} --control-s {control_s:g} --step-size {step_size} --estimator {estimator} "
        f"--pacing {pacing} --seed {seed}"
    )
    with Progress(stderr=True) as board:
        progress = SpendProgress(board, cost)
        result = run_simulation(today, SimulationRequest(budget, config, command), progress, yesterday)
    typer.echo("\n".join(result.lines()))
    written = write_simulation(result, out) if out is not None else []
    if save_allocator is not None:
        info: dict[str, Any] = {"command": command, "source": today.source}
        written.append(result.allocator.save(save_allocator, info))
    if written:
        typer.echo("wrote " + ", ".join(str(p) for p in written))


def cascade_command(
    traffic: Annotated[
        str,
        typer.Option(
            help="world: the world's later rec pages, rewarded by its hidden click model (needs --world "
            "and the store it was ingested into); movielens: MovieLens-1M replayed, rewarded by the "
            "user's next liked ratings."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for the ChainOutcomes (replaced whole).")],
    world: WorldOpt = None,
    cascade: Annotated[
        str,
        typer.Option(help=PRESETS_HELP[0].upper() + PRESETS_HELP[1:] + "."),
    ] = "full",
    requests: Annotated[int | None, typer.Option(help="At most this many requests.")] = None,
    dot_epochs: Annotated[
        int | None, typer.Option(help="Epochs of the BPR / LightGCN instances (default: the preset's).")
    ] = None,
    rank_epochs: Annotated[
        int | None, typer.Option(help="Epochs of the srf<d> ranking instances (default: the preset's).")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seeds the models and the timed requests (default: the preset's or the JSON's)."),
    ] = None,
    threads: Annotated[int, typer.Option(help="torch threads for training (timing uses one).")] = 1,
) -> None:
    """Train the cascade (recall, pre-ranking, ranking instances of the project's models), score every
    action chain on every request and save the ChainOutcomes to --out; print per chain its MFLOPs,
    CPU µs per request and mean reward, and Spearman(FLOPs, CPU) over the chains.

    Examples: mokg allocate cascade --traffic world --world mokg-data/world-demo --out /tmp/outcomes;
    mokg allocate cascade --traffic movielens --cascade quick --out /tmp/ml
    """
    if traffic not in ("world", "movielens"):
        raise InputError(f"unknown --traffic {traffic!r}; the cascade runs on world or movielens")
    if (requests is not None and requests < 1) or threads < 1:
        raise InputError(f"--requests and --threads must be >= 1, got {requests} and {threads}")
    from contextlib import nullcontext

    import torch

    from consumers.allocation.build import cascade_config, run_cascade
    from mokg.context import open_store

    config = cascade_config(
        cascade, traffic, max_requests=requests, dot_epochs=dot_epochs, rank_epochs=rank_epochs, seed=seed
    )
    if traffic == "world" and world is None:
        raise InputError("--traffic world needs --world DIR: the world directory the store was ingested from")
    torch.set_num_threads(threads)
    with open_store() if traffic == "world" else nullcontext() as store:
        result = run_cascade(store, traffic, config, world, out)
    typer.echo("\n".join(result.lines()))


def serve(
    model: Annotated[
        Path, typer.Option(help="An allocator written by mokg allocate simulate --save-allocator.")
    ],
    requests: Annotated[
        str,
        typer.Option(
            help="Request rows with the allocator's feature columns (and an optional request id column; "
            "a time column in seconds when pacing): a .parquet or .csv file, or - for JSON lines on stdin."
        ),
    ] = "-",
    lam: Annotated[float | None, typer.Option("--lambda", help="Serve at this fixed λ (no pacing).")] = None,
    pace: Annotated[
        bool,
        typer.Option(
            help="Set λ before every request by the pacing rule (D3) against the saved window budgets "
            "(the default when the allocator carries a pacing plan); --no-pace serves at the saved λ."
        ),
    ] = True,
    out: Annotated[Path | None, typer.Option(help="Write the CSV here instead of stdout.")] = None,
) -> None:
    """Choose a chain per request by (D1), argmax_j (estimated reward − λ·cost): CSV of request,
    chain (index), chain_name and the λ it was chosen at. An allocator saved from a (D3) replay
    paces: requests are served in time order and λ follows each window's spend against its budget
    (with --out, the spend per window is printed). From Python: load_allocator(path).choose(row)
    at a fixed λ, or .choose_at(row, seconds_after_midnight) paced.

    Examples: mokg allocate serve --model /tmp/alloc.npz --requests rows.parquet --out chains.csv;
    mokg allocate serve --model /tmp/alloc.npz --requests rows.parquet --lambda 0.5
    """
    from consumers.allocation.persist import load_allocator, pacing_windows, serve_table
    from graph import files

    allocator = load_allocator(model)
    if lam is not None:
        if lam < 0:
            raise InputError(f"--lambda must be non-negative, got {lam}")
        allocator.set_lambda(lam)
    paced = pace and lam is None and allocator.plan is not None
    frame = read_requests(requests)
    table = serve_table(allocator, frame, paced=paced)
    if out is None:
        typer.echo(table.to_csv(index=False), nl=False)
        return
    files.write_csv(out, table)
    how = "λ by (D3) pacing" if paced else f"λ {allocator.lam:.4g}"
    typer.echo(f"wrote {out} ({len(table):,} requests; {how})")
    if paced and len(table):
        w = pacing_windows(allocator)
        w = w[(w["budget"] > 0) & (w["requests"] > 0)]
        typer.echo(
            f"last day: spend / budget {w['ratio'].min():.1%} to {w['ratio'].max():.1%} over the "
            f"{len(w)} windows with requests; in all {w['spend'].sum() / w['budget'].sum():.1%}"
        )


def read_requests(source: str) -> pd.DataFrame:
    """The request rows of ``source`` (.parquet, .csv, or ``-``: JSON lines on stdin)."""
    import io
    import sys

    import pandas as pd

    try:
        if source == "-":
            text = sys.stdin.read()
            return pd.read_json(io.StringIO(text), lines=True) if text.strip() else pd.DataFrame()
        if source.endswith(".parquet"):
            return pd.read_parquet(source)
        if source.endswith(".csv"):
            return pd.read_csv(source)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the requests from {source}: {exc}") from None
    raise InputError(f"--requests {source}: give a .parquet or .csv file, or - for JSON lines on stdin")
