"""`mokg demo`: the main job on the current store (the embedded default unless configured).

Generates the demo-scale seeded world (2k users, 1k items; reused when already there), ingests
its visible tables into the store as one run, asks the named queries a marketing team asks first,
and exports the graph as Turtle, PyG, networkx JSON and Parquet. ``--sample`` loads the tiny
hand-written sample graph instead. Re-running changes nothing in the store.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from graph.progress import Progress
from graph.store import GraphStore, StoreConfig, open_store
from mokg.exporting import export_subgraph
from mokg.output import render_table

EXPORTS = {"rdf": "graph.ttl", "pyg": "graph.pt", "networkx": "graph.json", "parquet": "parquet"}
SAMPLE_QUERIES: list[tuple[str, dict[str, str]]] = [
    ("user_intents", {"user_id": "user_ana"}),
    ("users_near_intent", {"intent_id": "wedding_preparation", "hops": "3"}),
    ("category_items", {"category_id": "cat_apparel"}),
    (
        "path_between",
        {"from_label": "User", "from_id": "user_chen", "to_label": "Brand", "to_id": "brand_babystep"},
    ),
    ("top_relations", {"rel_type": "NEEDS", "limit": "5"}),
]


def _load_sample(store: GraphStore, console: Console) -> list[tuple[str, dict[str, str]]]:
    from loaders.sample import load_sample, read_sample

    nodes, edges = read_sample()
    total = sum(len(f) for f in nodes.values()) + sum(len(f) for f in edges.values())
    with store.run_context("demo", "built-in sample graph") as run_id, Progress(console) as board:
        rows = board.stage("loading the sample graph", total=total, unit="rows")
        load_sample(store, run_id, progress=lambda _name, n: rows.advance(n))
    return SAMPLE_QUERIES


def _load_world(store: GraphStore, world_dir: Path, console: Console) -> list[tuple[str, dict[str, str]]]:
    from loaders.ingest import ingest_world, visible_rows
    from loaders.world.config import world_config
    from loaders.world.generate import generate_world
    from loaders.world.layout import MANIFEST, WorldDir

    cfg = world_config("demo", seed=0)
    if not (world_dir / MANIFEST).exists() or WorldDir(world_dir).manifest()["config"] != cfg.as_dict():
        with Progress(console) as board:
            chunks = board.stage("generating the demo world", unit="chunks")
            generate_world(cfg, world_dir, progress=chunks.update)
    with Progress(console) as board:
        rows = board.stage(f"ingesting {world_dir}", total=visible_rows(world_dir), unit="rows")
        ingest_world(store, world_dir, progress=lambda _name, n: rows.advance(n))
    top = store.run("top_degree", {"label": "Item", "limit": 1})
    campaign = store.run(
        "MATCH (c:Campaign)-[:TARGETS]->(:Intent) RETURN c.id AS campaign ORDER BY campaign LIMIT 1"
    )
    leaf = store.run(
        "MATCH (:Item {id: $id})-[:BELONGS_TO]->(c:Category)-[:SUBCATEGORY_OF]->(p:Category) "
        "RETURN p.id AS p",
        {"id": str(top["id"][0])},
    )
    return [
        ("top_degree", {"label": "Item", "limit": "5"}),
        ("category_items", {"category_id": str(leaf["p"][0]), "depth": "2"}),
        ("k_hop_neighbourhood", {"label": "Campaign", "id": str(campaign["campaign"][0]), "hops": "1"}),
        (
            "path_between",
            {
                "from_label": "Campaign",
                "from_id": str(campaign["campaign"][0]),
                "to_label": "Item",
                "to_id": str(top["id"][0]),
                "hops": "5",
            },
        ),
        ("label_counts", {}),
    ]


def run_demo(config: StoreConfig, out: Path, *, sample: bool = False, world_dir: Path | None = None) -> None:
    console = Console()
    with open_store(config, create=True) as store:
        store.init_schema()
        console.rule(f"[bold]mokg demo[/bold] on the {config.describe()}")
        if sample:
            queries = _load_sample(store, console)
        else:
            queries = _load_world(store, world_dir or out.parent / "world-demo", console)
        for name, params in queries:
            args = " ".join(f"-p {k}={v}" for k, v in params.items())
            render_table(store.run(name, params), title=f"mokg query {name} {args}".strip(), limit=10)
        if not sample:
            _mine(store, out.parent / "mining" / "demo", console)
            _peace(store, out, console)
        sub = store.subgraph()
        for fmt, fname in EXPORTS.items():
            path = export_subgraph(sub, fmt, out / fname)
            console.print(f"exported {fmt:9s} → {path}")
        stats = store.stats()
        console.print(
            f"[bold]{stats['total_nodes']:,} nodes, {stats['total_edges']:,} edges[/bold] at version "
            f"{store.version()}. Next: `mokg stats`, `mokg query --list`, `mokg eval mining`, "
            "`mokg audience export --campaign camp_0007 --size 200 --method ppr --out audience.parquet`, "
            f"`mokg recommend --user u_0000001 --domain finance --artefacts {out / 'peace'}`."
        )


def _mine(store: GraphStore, work: Path, console: Console) -> None:
    """PAIR over every intent with the world's teacher (medium noise), 2 rounds; a rerun is a no-op."""
    from mining.pipeline.build import BuildRequest, run_build
    from mining.pipeline.builddir import BuildDir
    from mining.pipeline.config import MiningConfig

    config, build = MiningConfig(rounds=2), BuildDir(work)
    stale = build.has_state() and build.load_state().config_hash != config.config_hash()
    request = BuildRequest(config, workdir=work, fresh=stale)  # an older mokg's demo build is redone
    with Progress(console) as board:
        result = run_build(store, request, progress=board.stages("mining "))
    if result.done_before:
        console.print(f"mining run {result.run_id} already done ({work})")
        return
    report = result.report
    console.print(
        f"mined {report['triples']} triples ({report['triples_per_relation']}) in {report['wall_s']} s, "
        f"run {result.run_id}; score them: `mokg eval mining --workdir {work}`"
    )


def _peace(store: GraphStore, out: Path, console: Console) -> None:
    """A short PEACE run over the mined KG, against MostPop and LightGCN (NDCG@10 per target domain)."""
    import pandas as pd

    from gnn.rec.train import run_demo_peace

    with console.status("training PEACE (short demo run)"):
        summary = run_demo_peace(store, out)
    rows = [{"model": m, **scores} for m, scores in summary["ndcg@10"].items()]
    render_table(pd.DataFrame(rows), title="NDCG@10, leave-last-out, demo world (see `mokg eval rec`)")
