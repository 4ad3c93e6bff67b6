"""`mokg build` (PAIR's mining job) and `mokg eval mining` (against the world's ground truth)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from graph.errors import InputError

if TYPE_CHECKING:
    from graph.store import GraphStore
    from mining.llm.base import LLMClient
    from mining.pipeline.config import MiningConfig


TRANSCRIPT = "transcript.jsonl"  # every request and answer of a build (LightPAIR's corpus)


class LLMChoice(StrEnum):
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


@contextlib.contextmanager
def _llm(
    choice: LLMChoice,
    noise: str,
    seed: int,
    base_url: str | None,
    model: str | None,
    limits: dict[str, Any],
    cache: Path | None,
    latency: float,
    world: Path | None,
) -> Iterator[LLMClient]:
    """The job's client behind the response cache (a teacher server runs for the block if chosen)."""
    from mining.llm import make_client
    from mining.llm.cache import ResponseCache
    from mining.llm.cached import CachedClient

    if choice is LLMChoice.teacher:
        from mining.teacher import TeacherServer, noise_level

        with TeacherServer(world, port=0, noise=noise_level(noise, seed), latency_s=latency) as server:
            inner = make_client("openai", base_url=server.base_url, model=server.model, **limits)
            yield CachedClient(inner, ResponseCache(cache) if cache else ResponseCache())
        return
    if choice is LLMChoice.replay:
        from mining.llm.cache import default_cache_dir
        from mining.teacher import noise_level

        recorded = model or noise_level(noise, seed).model_id()  # default: the teacher at --noise/--seed
        yield make_client("replay", path_or_dir=cache or default_cache_dir(), model=recorded)
        return
    if choice is LLMChoice.openai:
        if not base_url or not model:
            raise InputError("--llm openai needs --base-url (e.g. http://127.0.0.1:8000/v1) and --model")
        inner = make_client("openai", base_url=base_url, model=model, seed=seed, **limits)
    elif choice is LLMChoice.lightpair:
        if not model:
            raise InputError("--llm lightpair needs --model DIR (a checkpoint of `mokg lightpair distill`)")
        inner = make_client("lightpair", model_path=model, precision=limits.get("precision", "fp32"))
    else:
        if not model:
            raise InputError("--llm local needs --model PATH (a model directory or a .gguf file)")
        inner = make_client("local", model_path=model, seed=seed)
    yield CachedClient(inner, ResponseCache(cache) if cache else ResponseCache())


def _job_key(config: MiningConfig, seeds: str, limit: int | None, llm: str, store: str) -> str:
    text = json.dumps([config.config_hash(), seeds, limit, llm, store], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("build")(build)
    eval_app.command("mining")(eval_mining)


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
) -> None:
    """Mine the marketing KG with PAIR into the store (rerun the same command to resume or no-op).

    Rounds of: adaptive relation filtering → progressive entity expansion → entity resolution →
    aggregation (self-consistency + MiniLM relatedness + judgement) → one write per round, with
    provenance (vote, relatedness, prompt ids) on every edge. A checkpoint after each round lets a
    killed run continue where it stopped; the response cache makes re-asked prompts free.

    Example: `mokg build --limit 40 --rounds 3 --noise medium`, then
    `mokg eval mining --world mokg-data/world-demo`.
    """
    from rich.console import Console
    from rich.progress import Progress

    from mining.llm.recording import RecordingClient
    from mining.pipeline import checkpoint
    from mining.pipeline.config import MiningConfig
    from mining.pipeline.job import MiningJob, run_job
    from mining.pipeline.seeds import load_seeds
    from mokg.cli import _open
    from mokg.output import stage_progress

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
    if llm is LLMChoice.lightpair and model is not None and not evidence:
        from mining.lightpair.checkpoint import read_meta

        if (Path(model) / "lightpair.json").exists() and read_meta(Path(model)).model.evidence:
            typer.echo(
                f"warning: {model} was trained on prompts with behavioural evidence; without --evidence "
                "it answers from names alone (much lower recall). Add --evidence.",
                err=True,
            )
    if precision not in ("fp32", "bf16"):
        raise InputError(f"--precision must be fp32 or bf16, not {precision!r}")
    store: GraphStore = _open()
    try:
        llm_id = f"{llm.value}:{model or ''}:{base_url or ''}:{noise if llm is LLMChoice.teacher else ''}"
        if llm is LLMChoice.lightpair and precision != "fp32":  # (fp32 keeps earlier jobs' keys)
            llm_id += f":{precision}"
        key = _job_key(config, seeds, limit, llm_id, store.config.describe())
        work = workdir or Path("mokg-data") / "mining" / f"build-{key}"
        resume = (work / checkpoint.STATE).exists() and not fresh
        if resume:
            state = checkpoint.load(work)
            if state.config_hash != config.config_hash():
                raise InputError(
                    f"{work} holds a checkpoint of another config; pass --fresh or another --workdir"
                )
            if state.finished:
                typer.echo(f"run {state.run_id} already finished (checkpoint {work}); nothing to do")
                return
        console = Console(stderr=True)
        limits: dict[str, Any] = {"concurrency": concurrency, "timeout_s": timeout, "max_retries": retries}
        if llm is LLMChoice.openai:
            limits["schema_format"] = schema_format
        if llm is LLMChoice.lightpair:
            limits["precision"] = precision
        with (
            _llm(llm, noise, seed, base_url, model, limits, cache, latency, world) as client,
            Progress(console=console, transient=False) as bar,
        ):
            recorded = RecordingClient(client, work / TRANSCRIPT)
            job = MiningJob(store, recorded, config, work, progress=stage_progress(bar))
            if resume:
                typer.echo(f"resuming run {state.run_id} after round {state.round_done} ({work})")
            else:
                picked = load_seeds(store, seeds, limit, seed)
                if evidence:
                    typer.echo("reading behavioural evidence (searches, interactions) from the store …")
                state = job.start(picked, note=json.dumps({"seeds": seeds, "limit": limit, "llm": llm_id}))
            try:
                result = run_job(job, state)
            except BaseException:
                store.finish_run(state.run_id, ok=False)
                raise
        report = result.report()
        report["llm"]["cost"] = round(result.usage.cost(*price), 6)
        (work / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
        _print_report(report)
        typer.echo(
            f"report: {work / 'report.json'}; candidates: {work / checkpoint.CANDIDATES}; "
            f"transcript: {work / TRANSCRIPT}"
        )
    finally:
        store.close()


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
) -> None:
    """Precision, recall and F1 per relation of a mining run against the world's truth, plus
    entity-resolution accuracy; or, with --ablations, PAIR vs its ablations across noise levels.

    A run's triples are its accepted candidates (``candidates.jsonl`` in its work directory, which
    includes triples the graph already had); without a work directory, its edges in the store.
    Recall counts the true triples whose head is a seed or a true tail of a seed (the reachable
    heads), the same for every variant.
    """
    from mining.pipeline import checkpoint
    from mining.pipeline.config import MiningConfig
    from mining.pipeline.embed import Embedder
    from mining.pipeline.evaluate import TruthKG, accepted_of, er_accuracy, mined_by_run, prf
    from mining.pipeline.resolve import Resolver
    from mokg.cli import _open
    from mokg.output import render_table

    truth = TruthKG.from_world(world)
    store = _open()
    try:
        if ablations:
            table = _ablations(store, truth, noise, limit, rounds, seed, cache)
            typer.echo(
                f"command: mokg eval mining --ablations --noise {noise} --limit {limit} --rounds {rounds} "
                f"--seed {seed}"
            )
        else:
            run_id = run or _latest_mine_run(store)
            found = workdir if workdir is not None else _checkpoint_of(run_id)
            if found is None:
                mined = mined_by_run(store, run_id)
                heads = {h for _, h, _ in mined}
                typer.echo("no checkpoint of this run under mokg-data/mining: scoring its edges in the store")
            else:
                mined, heads = accepted_of(found), set(checkpoint.load(found).seeds)
            table = prf(mined, truth, truth.reachable_heads(heads)).round(3)
            typer.echo(f"run {run_id}: {len(mined)} mined triples")
            er = er_accuracy(Resolver.from_store(store, Embedder(), MiningConfig().er_threshold))
            typer.echo(
                f"entity resolution on {er['variants']} surface variants: accuracy {er['accuracy']:.3f} "
                + ", ".join(f"{k} {v:.3f}" for k, v in er.items() if k not in ("variants", "accuracy"))
            )
        render_table(table)
        if out is not None:
            table.to_json(out, orient="records", indent=1) if out.suffix == ".json" else table.to_csv(
                out, index=False
            )
            typer.echo(f"wrote {out}")
    finally:
        store.close()


def _latest_mine_run(store: GraphStore) -> str:
    runs = store.runs()
    mine = runs[runs["kind"] == "mine"] if len(runs) else runs
    if not len(mine):
        raise InputError("the store has no mining run yet; run `mokg build` first")
    return str(mine.sort_values("seq")["id"].iloc[-1])


def _checkpoint_of(run_id: str) -> Path | None:
    """The work directory of a run under mokg-data/mining (None if not there)."""
    from mining.pipeline import checkpoint

    for path in sorted(Path("mokg-data/mining").glob(f"*/{checkpoint.STATE}")):
        if checkpoint.load(path.parent).run_id == run_id:
            return path.parent
    return None


def _ablations(
    store: GraphStore, truth: Any, noise: str, limit: int, rounds: int, seed: int, cache: Path | None
) -> Any:
    from rich.console import Console
    from rich.progress import Progress

    from mining.pipeline.ablations import run_ablations
    from mining.pipeline.config import MiningConfig
    from mining.pipeline.seeds import load_seeds
    from mokg.output import stage_progress

    seeds = load_seeds(store, "intents", limit, seed)
    levels = [n.strip() for n in noise.split(",") if n.strip()]
    with Progress(console=Console(stderr=True), transient=True) as bar:
        return run_ablations(
            store,
            truth,
            seeds,
            MiningConfig(rounds=rounds),
            levels,
            cache_dir=cache,
            progress=stage_progress(bar),
        )
