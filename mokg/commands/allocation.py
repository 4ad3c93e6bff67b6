"""GreenFlow computation allocation (issue 20): `mokg eval allocation`, `mokg allocate simulate`
and `mokg allocate serve`.

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

    from consumers.allocation.outcomes import ChainOutcomes
    from mokg.commands import Groups

TRAFFIC = ("synthetic", "world", "movielens")


def register(groups: Groups) -> None:
    groups.eval.command("allocation")(eval_allocation)
    groups["allocate"].command("simulate")(simulate)
    groups["allocate"].command("serve")(serve)


def load_traffic(
    traffic: str, outcomes: Path | None, requests: int, seed: int, explore_share: float
) -> tuple[ChainOutcomes, ChainOutcomes | None, str]:
    """(today, yesterday or None, the options that chose them): synthetic traffic is generated
    (yesterday: a day without the campaign); world and movielens only come saved (``--outcomes``)."""
    from consumers.allocation.outcomes import ChainOutcomes
    from consumers.allocation.synthetic import synthetic_outcomes

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
        today = synthetic_outcomes(requests, seed + 1, day=1)
        yesterday = synthetic_outcomes(requests, seed, campaign_hour=None, day=0)
        return today, yesterday, f"--traffic synthetic --requests {requests}"
    raise InputError(
        f"--traffic {traffic}: only synthetic is generated here; save the cascade's ChainOutcomes "
        "for world or movielens and pass --outcomes DIR"
    )


def eval_allocation(
    traffic: Annotated[
        str,
        typer.Option(
            help="Where the requests come from: synthetic (a generated day with known structure and a "
            "3× campaign hour; yesterday is a second day without the campaign). world and movielens "
            "come from the cascade: save its ChainOutcomes and pass --outcomes."
        ),
    ] = "synthetic",
    outcomes: Annotated[
        Path | None,
        typer.Option(
            help="A folder written by ChainOutcomes.save (the cascade's requests, chain costs and true "
            "rewards); replaces --traffic. Yesterday is a random --explore-share of its requests."
        ),
    ] = None,
    requests: Annotated[int, typer.Option(help="Synthetic requests per day.")] = 100_000,
    budget_saving: Annotated[
        float, typer.Option(help="The budget saves this share of the most expensive chain's cost.")
    ] = 0.4,
    cost: Annotated[str, typer.Option(help="Cost unit: flops or cpu_seconds.")] = "flops",
    budget_split: Annotated[
        str,
        typer.Option(
            help="The day's budget per hour ∝ traffic (a perfect forecast), forecast (yesterday's "
            "traffic) or flat; adherence is reported under all three."
        ),
    ] = "traffic",
    estimator: Annotated[str, typer.Option(help="Reward estimator: mlp or hgb.")] = "mlp",
    explore_share: Annotated[
        float,
        typer.Option(help="With --outcomes: the share of requests that is yesterday's exploration log."),
    ] = 0.5,
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
    mokg eval allocation --outcomes mokg-data/outcomes/movielens --cost cpu_seconds --out results/
    """
    if requests < 10 or threads < 1:
        raise InputError(f"--requests must be ≥ 10 and --threads ≥ 1, got {requests} and {threads}")
    from consumers.allocation.config import AllocationConfig, RewardConfig

    config = AllocationConfig(
        budget_saving=budget_saving,
        cost_unit=cost,
        budget_split=budget_split,
        explore_share=explore_share,
        seed=seed,
        reward=RewardConfig(kind=estimator, seed=seed),
    )
    import torch

    from consumers.allocation.run import run, write_results
    from graph.progress import Progress

    torch.set_num_threads(threads)
    today, yesterday, source = load_traffic(traffic, outcomes, requests, seed, explore_share)
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
            help="synthetic (generated; yesterday is a day without the campaign), or world / movielens "
            "from the cascade's saved ChainOutcomes (--outcomes DIR, required for them)."
        ),
    ] = "synthetic",
    outcomes: Annotated[
        Path | None,
        typer.Option(
            help="A folder written by ChainOutcomes.save; yesterday is a random --explore-share of it."
        ),
    ] = None,
    requests: Annotated[int, typer.Option(help="Synthetic requests per day.")] = 100_000,
    cost: Annotated[str, typer.Option(help="Cost unit: flops or cpu_seconds.")] = "flops",
    budget_split: Annotated[
        str,
        typer.Option(help="The day's budget per window ∝ traffic, forecast (yesterday's traffic) or flat."),
    ] = "traffic",
    window_s: Annotated[float, typer.Option(help="Budget window in seconds.")] = 3600.0,
    control_s: Annotated[
        float, typer.Option(help="Seconds between dual updates (divides --window-s).")
    ] = 60.0,
    step_size: Annotated[float, typer.Option(help="η of the dual update (D2).")] = 0.5,
    estimator: Annotated[
        str, typer.Option(help="Reward estimator: mlp or hgb (only mlp can be saved).")
    ] = "mlp",
    explore_share: Annotated[
        float,
        typer.Option(help="With --outcomes: the share of requests that is yesterday's exploration log."),
    ] = 0.5,
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
    if requests < 10 or threads < 1:
        raise InputError(f"--requests must be ≥ 10 and --threads ≥ 1, got {requests} and {threads}")
    from consumers.allocation.config import AllocationConfig, RewardConfig
    from consumers.allocation.simulate import SimulationRequest

    config = AllocationConfig(
        cost_unit=cost,
        window_s=window_s,
        control_s=control_s,
        step_size=step_size,
        budget_split=budget_split,
        explore_share=explore_share,
        seed=seed,
        reward=RewardConfig(kind=estimator, seed=seed),
    )
    SimulationRequest(budget, config)  # checks --budget before any work
    if save_allocator is not None and estimator != "mlp":
        raise InputError(f"--save-allocator needs --estimator mlp (a {estimator} estimator is not saved)")
    import torch

    from consumers.allocation.simulate import SpendProgress, run_simulation, write_simulation
    from graph.progress import Progress

    torch.set_num_threads(threads)
    today, yesterday, source = load_traffic(traffic, outcomes, requests, seed, explore_share)
    command = (
        f"mokg allocate simulate --budget {budget} {source} --cost {cost} --budget-split {budget_split} "
        f"--window-s {window_s:g} --control-s {control_s:g} --step-size {step_size} --estimator {estimator} "
        f"--seed {seed}"
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


def serve(
    model: Annotated[
        Path, typer.Option(help="An allocator written by mokg allocate simulate --save-allocator.")
    ],
    requests: Annotated[
        str,
        typer.Option(
            help="Request rows with the allocator's feature columns (and an optional request id column): "
            "a .parquet or .csv file, or - for JSON lines on stdin."
        ),
    ] = "-",
    lam: Annotated[
        float | None, typer.Option("--lambda", help="Serve at this λ instead of the saved one.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the CSV here instead of stdout.")] = None,
) -> None:
    """Choose a chain per request by (D1), argmax_j (estimated reward − λ·cost): CSV of request,
    chain (index) and chain_name. From Python: load_allocator(path).choose(features_row).

    Example: mokg allocate serve --model /tmp/alloc.npz --requests rows.parquet
    """
    from consumers.allocation.persist import load_allocator, serve_table
    from graph import files

    allocator = load_allocator(model)
    if lam is not None:
        if lam < 0:
            raise InputError(f"--lambda must be non-negative, got {lam}")
        allocator.set_lambda(lam)
    frame = read_requests(requests)
    table = serve_table(allocator, frame)
    if out is None:
        typer.echo(table.to_csv(index=False), nl=False)
    else:
        files.write_csv(out, table)
        typer.echo(f"wrote {out} ({len(table):,} requests)")


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
