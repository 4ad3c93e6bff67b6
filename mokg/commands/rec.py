"""Recommendation commands: `mokg train peace`, `mokg eval rec`, `mokg recommend`.

Heavy imports (torch, the models) happen inside the commands.
"""

from __future__ import annotations

import json
import shlex
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from graph import files
from graph.errors import InputError
from mokg.context import open_store

if TYPE_CHECKING:
    from graph.store import GraphStore
    from mokg.commands import Groups

ARTEFACTS = Path("mokg-data/rec/peace")
KG_HELP = (
    "Knowledge graph arm: none, store (the store's own KG edges: the mined relations and any declared "
    "for a loaded KG, e.g. Freebase from `mokg load recbole`) or NAME:PATH (an embedded store to read "
    "them from, e.g. truth:/tmp/truth/graph or mined:mokg-data/mined/graph)."
)

SplitOpt = Annotated[str, typer.Option(help="leave_last_out, temporal, cold_start or cold_items.")]
TargetsOpt = Annotated[str, typer.Option(help="Comma-separated target domains (the others are the sources).")]
ColdOpt = Annotated[str, typer.Option(help="Domain held out by the cold_start split.")]
ShareOpt = Annotated[
    float, typer.Option(help="Share of items held out by the cold_items split (ranked as TARGET:cold).")
]
ThreadsOpt = Annotated[int, typer.Option(help="torch threads (1 is fastest on a shared 2-core machine).")]
FeaturesOpt = Annotated[bool, typer.Option(help="MiniLM text features of items and entities.")]
DimOpt = Annotated[int, typer.Option(help="Embedding width d.")]
PreOpt = Annotated[int, typer.Option(help="PEACE pre-training epochs (sources).")]
FtOpt = Annotated[int, typer.Option(help="PEACE fine-tuning epochs (per target).")]
BatchOpt = Annotated[int, typer.Option(help="Training batch size.")]
LinkedInitOpt = Annotated[
    float,
    typer.Option(
        help="Initial std of a loaded KG's entity embeddings (0: an entity no training reaches, "
        "e.g. a held-out film's, is only its neighbours' messages)."
    ),
]
NprocOpt = Annotated[
    int,
    typer.Option(
        help="Training processes (torch.distributed, gloo on CPU; >1 re-runs the command under "
        "torchrun; the --threads are shared among them).",
    ),
]
MaxBatchesOpt = Annotated[
    int | None, typer.Option(help="Cap on PEACE's batches per epoch (default: every interaction once).")
]


def register(groups: Groups) -> None:
    """`train peace`, `eval rec` and `recommend`."""
    groups["train"].command("peace")(train_peace)
    groups.eval.command("rec")(eval_rec)
    groups.app.command("recommend")(recommend)


def train_peace(
    out: Annotated[Path, typer.Option(help="Artefact directory.")] = ARTEFACTS,
    split: SplitOpt = "leave_last_out",
    targets: TargetsOpt = "finance,travel,health",
    cold_domain: ColdOpt = "health",
    cold_share: ShareOpt = 0.2,
    kg: Annotated[str, typer.Option(help=KG_HELP)] = "store",
    seed: Annotated[int, typer.Option(help="Seed of parameters, batches, k-means.")] = 0,
    dim: DimOpt = 64,
    interests: Annotated[int, typer.Option(help="Interests per user K.")] = 4,
    prototypes: Annotated[int, typer.Option(help="Prototypes C.")] = 32,
    pretrain_epochs: PreOpt = 6,
    finetune_epochs: FtOpt = 6,
    batch_size: BatchOpt = 1024,
    max_batches: MaxBatchesOpt = None,
    use_prototypes: Annotated[bool, typer.Option(help="Ablation: contrastive prototypes.")] = True,
    proto_attention: Annotated[bool, typer.Option(help="Ablation: prototype attention.")] = True,
    entity_graph: Annotated[bool, typer.Option(help="Ablation: items from entities.")] = True,
    single_interest: Annotated[bool, typer.Option(help="Ablation: K = 1.")] = False,
    linked_init: LinkedInitOpt = 0.1,
    features: FeaturesOpt = True,
    threads: ThreadsOpt = 1,
    nproc: NprocOpt = 1,
) -> None:
    """Train PEACE (pre-train on the source domains, fine-tune per target) and save the artefacts
    that `mokg recommend` serves from."""
    import torch

    from gnn import distributed
    from gnn.rec.data import RecDataConfig
    from gnn.rec.peace import PeaceConfig
    from gnn.rec.train import train_peace as job

    if (code := distributed.launch(nproc, sys.argv[1:])) is not None:
        raise typer.Exit(code)
    torch.set_num_threads(distributed.threads(threads))
    cfg = PeaceConfig(
        dim=dim,
        interests=interests,
        prototypes=prototypes,
        pretrain_epochs=pretrain_epochs,
        finetune_epochs=finetune_epochs,
        batch_size=batch_size,
        max_batches=max_batches,
        use_prototypes=use_prototypes,
        use_proto_attention=proto_attention,
        use_entity_graph=entity_graph,
        single_interest=single_interest,
        linked_init=linked_init,
        seed=seed,
    )
    dcfg = RecDataConfig(
        split=_split(split),
        cold_domain=cold_domain,
        cold_share=cold_share,
        kg=kg == "store",
        features=features,
    )
    with ExitStack() as stores:
        store, arm = None, None  # ranks > 0 (--nproc) get the data from rank 0
        if distributed.is_main():
            store = stores.enter_context(open_store())
            arm = None if kg == "store" else (_arm_name(kg), _kg_arm(kg, store, stores))
        model, data, path = job(store, dcfg, cfg, _list(targets), out, kg=arm)
    if not distributed.is_main():
        return
    typer.echo(
        f"PEACE ({cfg.config_hash()}) on {data.n_users:,} users, {data.n_items:,} items, "
        f"KG {data.kg_source} ({data.kg_edges.shape[1]:,} entity edges); losses "
        + json.dumps({k: round(v[-1], 3) for k, v in model.losses.items() if v})
    )
    typer.echo(f"artefacts: {path}")


def eval_rec(
    out: Annotated[Path, typer.Option(help="Directory for the CSV/JSON/Markdown results.")] = Path(
        "mokg-data/rec/eval"
    ),
    split: Annotated[
        list[str] | None,
        typer.Option(
            help="Split (repeat; default leave_last_out, temporal, cold_start). cold_items: for "
            "data with one domain (e.g. MovieLens): held-out items, unseen in training."
        ),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    targets: TargetsOpt = "finance,travel,health",
    cold_domain: ColdOpt = "health",
    cold_share: ShareOpt = 0.2,
    kg: Annotated[list[str] | None, typer.Option(help=KG_HELP + " Repeat; default none and store.")] = None,
    model: Annotated[list[str] | None, typer.Option(help="Only these models (repeat).")] = None,
    dim: DimOpt = 64,
    pretrain_epochs: PreOpt = 6,
    finetune_epochs: FtOpt = 6,
    baseline_epochs: Annotated[int, typer.Option(help="Epochs of BPR-MF, LightGCN, EMCDR.")] = 30,
    batch_size: BatchOpt = 1024,
    max_batches: MaxBatchesOpt = None,
    linked_init: LinkedInitOpt = 0.1,
    max_test_users: Annotated[
        int | None,
        typer.Option(help="Score a seeded sample of this many test users per domain (default all)."),
    ] = None,
    features: FeaturesOpt = True,
    threads: ThreadsOpt = 1,
) -> None:
    """PEACE vs baselines vs ablations, full ranking, mean ± std over seeds, per target domain and
    on the cold-start domain; the KG arms show the graph's effect."""
    import torch

    from gnn.rec.baselines import BaselineConfig
    from gnn.rec.experiment import MODELS, RecEvalConfig, markdown_table, run_comparison, summarise
    from gnn.rec.peace import PeaceConfig

    torch.set_num_threads(threads)
    cfg = RecEvalConfig(
        splits=tuple(_split(s) for s in split or ("leave_last_out", "temporal", "cold_start")),
        seeds=tuple(int(s) for s in _list(seeds)),
        targets=tuple(_list(targets)),
        cold_domain=cold_domain,
        cold_share=cold_share,
        models=tuple(model or MODELS),
        features=features,
        peace=PeaceConfig(
            dim=dim,
            pretrain_epochs=pretrain_epochs,
            finetune_epochs=finetune_epochs,
            batch_size=batch_size,
            max_batches=max_batches,
            linked_init=linked_init,
        ),
        baseline=BaselineConfig(dim=dim, epochs=baseline_epochs, batch_size=batch_size),
        max_test_users=max_test_users,
    )
    with ExitStack() as stores:
        store = stores.enter_context(open_store())
        arms = {_arm_name(k): _kg_arm(k, store, stores) for k in kg or ["none", "store"]}
        raw = run_comparison(store, cfg, arms, log=lambda m: typer.echo(m, err=True))
        version = store.version().as_dict()
    summary = summarise(raw)
    command = "mokg " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    table = markdown_table(summary)
    meta = {"command": command, "seeds": list(cfg.seeds), "graph_version": version, "config": cfg.as_dict()}
    files.write_text(out / "rec_runs.csv", raw.to_csv(index=False))
    files.write_text(out / "rec_summary.csv", summary.to_csv(index=False))
    files.write_text(
        out / "rec_summary.json",
        json.dumps(meta | {"rows": summary.to_dict(orient="records")}, indent=2, default=str),
    )
    files.write_text(out / "rec_table.md", f"`{command}` (seeds {list(cfg.seeds)})\n\n{table}\n")
    typer.echo(f"command: {command}\nseeds: {list(cfg.seeds)}\n\n{table}\n\nwrote {out}/rec_*.csv|json|md")


def recommend(
    user: Annotated[str, typer.Option(help="User id.")],
    domain: Annotated[str, typer.Option(help="Business domain to recommend in.")],
    k: Annotated[int, typer.Option("-k", help="How many items.")] = 20,
    artefacts: Annotated[Path, typer.Option(help="Directory from `mokg train peace`.")] = ARTEFACTS,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    index: Annotated[
        str, typer.Option(help="auto (IVF where the artefacts have one), exact (every item) or ivf.")
    ] = "auto",
    nprobe: Annotated[int, typer.Option(help="IVF lists probed per interest.")] = 8,
) -> None:
    """Top-k unseen items for a user from PEACE's saved artefacts (no store, no training graph)."""
    from gnn.rec.serve import load_artefacts
    from gnn.rec.serve import recommend as serve

    art = load_artefacts(artefacts)
    items = serve(art, user, domain, k, index=index, nprobe=nprobe)
    if fmt == "json":
        typer.echo(json.dumps([{"item": i, "score": round(s, 5)} for i, s in items]))
        return
    typer.echo(
        f"{user} in {domain} (PEACE {art.manifest['config_hash']}, graph "
        f"{art.manifest['graph_version'].get('run_id')}):"
    )
    for rank, (item, score) in enumerate(items, 1):
        typer.echo(f"{rank:3d}  {item}  {score:.4f}")


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _split(name: str) -> Any:
    if name not in ("leave_last_out", "temporal", "cold_start", "cold_items"):
        raise InputError(f"unknown split {name!r}; use leave_last_out, temporal, cold_start or cold_items")
    return name


def _arm_name(spec: str) -> str:
    return spec.partition(":")[0]


def _kg_arm(spec: str, store: GraphStore, stores: ExitStack) -> GraphStore | None:
    """``none`` → None; ``store`` → the main store; ``NAME:PATH`` → that embedded store (opened here
    and closed with ``stores``, or the main store again if it is the same directory)."""
    from graph.store import StoreConfig
    from graph.store import open_store as open_at

    _name, sep, path = spec.partition(":")
    if spec == "none":
        return None
    if spec == "store":
        return store
    if not sep or not path:
        raise InputError(f"--kg {spec!r} is not none, store or NAME:PATH (e.g. truth:/tmp/truth/graph)")
    if store.config.backend == "embedded" and Path(path).resolve() == Path(store.config.path).resolve():
        return store
    kg_store: GraphStore = stores.enter_context(open_at(StoreConfig(backend="embedded", path=Path(path))))
    return kg_store
