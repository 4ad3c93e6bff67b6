"""`mokg lightpair distill|tune|compare-adapters|align` and `mokg eval lightpair` (issue 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from graph import files
from graph.errors import InputError
from mokg.context import open_store

if TYPE_CHECKING:
    from mining.pipeline.builddir import BuildDir
    from mokg.commands import Groups


def register(groups: Groups) -> None:
    """`lightpair distill|tune|compare-adapters|align`, `eval lightpair` and `feedback import`."""
    lightpair = groups["lightpair"]
    lightpair.command("distill")(distill)
    groups.eval.command("lightpair")(eval_lightpair)
    lightpair.command("tune")(tune)
    lightpair.command("compare-adapters")(compare_adapters)
    lightpair.command("align")(align)
    groups["feedback"].command("import")(feedback_import)


def find_workdir(run_id: str | None, workdir: Path | None) -> BuildDir:
    """The build of ``--workdir``, or the one under mokg-data/mining holding ``run_id``."""
    from mining.pipeline.builddir import BuildDir

    if workdir is not None:
        build = BuildDir(workdir)
        if not build.transcript.exists():
            raise InputError(f"{workdir} has no transcript.jsonl; pass the work dir of a `mokg build` run")
        return build
    if run_id is None:
        raise InputError("pass --from-run RUN_ID or --workdir DIR (a `mokg build` work dir)")
    return BuildDir.find(run_id)


def store_vocabulary() -> dict[str, list[str]]:
    """The store's closed tail sets (Category and Intent names) that LightPAIR answers over."""
    from mining.lightpair.corpus import store_tails

    with open_store() as store:
        tails = store_tails(store)
    if not tails["Intent"]:
        raise InputError("the store holds no Intent nodes: load or ingest the graph the build mined first")
    return tails


def distill(
    from_run: Annotated[
        str | None, typer.Option(help="The mining run whose transcript is the corpus.")
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="Or the build's work dir itself.")] = None,
    out: Annotated[Path, typer.Option(help="Checkpoint directory to write.")] = Path(
        "mokg-data/lightpair/ckpt"
    ),
    recipe: Annotated[
        str,
        typer.Option(
            help="v2: frozen encoder, per-relation projections, whole tail set, pooled targets, "
            "caps K_r; v3: v2 with 5-fold cross-fitted calibration, then trained on every head (6 fits); "
            "v1: the first model (top 2 layers fine-tuned, 64 random negatives)."
        ),
    ] = "v3",
    folds: Annotated[
        int | None,
        typer.Option(help="Cross-fitted calibration over this many folds (v3: 5; 0: one validation split)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the corpus (v1: 2, v2: 10).")] = None,
    train_layers: Annotated[
        int | None, typer.Option(help="Top encoder layers fine-tuned (-1: all; v1: 2, v2: 0).")
    ] = None,
    hold_out: Annotated[int, typer.Option(help="Intents kept out of the corpus (the eval seeds).")] = 30,
    hold_out_seed: Annotated[int, typer.Option(help="Seed of the held-out intent sample.")] = 0,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the split, batches and initialisation.")] = 0,
) -> None:
    """Distil LightPAIR from a PAIR build's transcript (the teacher's answers, not the truth).

    Example: `mokg lightpair distill --workdir mokg-data/mining/build-KEY --out mokg-data/lightpair/ckpt`.
    """
    from dataclasses import replace

    import torch

    from mining.lightpair.distill import distill as run
    from mining.lightpair.distill import hold_out_intents
    from mining.lightpair.training import V2, V3, TrainConfig

    torch.set_num_threads(1)
    recipes = {"v1": TrainConfig(), "v2": V2, "v3": V3}
    if recipe not in recipes:
        raise InputError(f"--recipe must be one of {', '.join(recipes)}, not {recipe!r}")
    if folds is not None and (folds == 1 or folds < 0):
        raise InputError(f"--folds must be 0 (one validation split) or at least 2, not {folds}")
    work = find_workdir(from_run, workdir)
    config = replace(recipes[recipe], max_steps=max_steps, seed=seed)
    if folds is not None:
        config = replace(config, folds=folds)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    if train_layers is not None:
        config = replace(config, train_layers=train_layers)
    tails = store_vocabulary()
    held = hold_out_intents(hold_out, hold_out_seed, tails["Intent"])
    meta = run(work, out, config, held, tails, log=typer.echo, per_relation=recipe != "v1")
    typer.echo(
        f"checkpoint {out}: corpus sha256 {meta.corpus_sha256[:16]} from {work.path} "
        f"(run {meta.source['run_id']}), "
        f"{meta.extra['examples']} training examples, {len(meta.held_out)} held-out intents, "
        f"{meta.extra['parameters']:,} parameters, {meta.extra['train_s']} s"
    )
    typer.echo(
        ("out-of-fold" if config.folds >= 2 else "validation")
        + " (teacher's majority answers): "
        + ", ".join(f"{k} {v:.3f}" for k, v in meta.metrics.items())
    )


def eval_lightpair(
    model: Annotated[Path, typer.Option(help="LightPAIR checkpoint dir.")] = Path("mokg-data/lightpair/ckpt"),
    world: Annotated[Path, typer.Option(help="World dir whose hidden/kg is the truth.")] = Path(
        "mokg-data/world-demo"
    ),
    limit: Annotated[int | None, typer.Option(help="Use this many of the held-out intents.")] = None,
    rounds: Annotated[int, typer.Option(help="Mining rounds.")] = 2,
    concurrency: Annotated[int, typer.Option(help="Requests in flight, the same for both systems.")] = 16,
    latency: Annotated[str, typer.Option(help="Comma-separated simulated teacher latencies (s).")] = "0.5,0",
    noise: Annotated[str, typer.Option(help="Teacher noise (use the corpus build's).")] = "medium",
    seed: Annotated[int, typer.Option(help="Mining seed.")] = 0,
    threads: Annotated[int, typer.Option(help="Torch threads for LightPAIR.")] = 1,
    precision: Annotated[
        str, typer.Option(help="LightPAIR's encoder precision: fp32, or bf16 (faster on CPUs with BF16).")
    ] = "fp32",
    evidence: Annotated[
        bool | None,
        typer.Option(
            "--evidence/--no-evidence",
            help="Behavioural evidence in the prompts (default: as the checkpoint was trained).",
        ),
    ] = None,
    per_relation: Annotated[
        bool, typer.Option("--per-relation", help="Also print P / R / F1 per relation for each system.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the table here (.json or .csv), and the per-relation scores beside it "
            "(NAME-relations.json / .csv)."
        ),
    ] = None,
) -> None:
    """LightPAIR vs the teacher on held-out seed intents (never heads in the corpus): triple F1
    against the world's truth, F1 ratio, and latency per call at the same concurrency.

    Example: `mokg eval lightpair --model CKPT --world W --rounds 2 --concurrency 16 --latency 0.5
    --per-relation --out lp.json` (the store must hold the world's visible data and no mined edges
    of an earlier build of these intents: use a fresh ingest)."""
    import torch

    from mining.lightpair.checkpoint import read_meta
    from mining.lightpair.corpus import norm
    from mining.lightpair.evaluate import by_relation, compact, compare
    from mining.pipeline.config import MiningConfig
    from mining.pipeline.evaluate import TruthKG
    from mining.pipeline.seeds import store_entities
    from mokg.output import render_table

    torch.set_num_threads(threads)
    if precision not in ("fp32", "bf16"):
        raise InputError(f"--precision must be fp32 or bf16, not {precision!r}")
    meta = read_meta(model)
    use_evidence = meta.model.evidence if evidence is None else evidence
    held = {norm(h) for h in meta.held_out} - {norm(h) for h in meta.heads}
    with open_store() as store:
        seeds = sorted(
            (e for e in store_entities(store, "Intent") if norm(e.name) in held), key=lambda e: e.id
        )
        if not seeds:
            raise InputError(
                "none of the checkpoint's held-out intents is in the store; distil with --hold-out N"
            )
        seeds = seeds[:limit] if limit else seeds
        waits = [float(x) for x in latency.split(",") if x.strip()]
        table, relations = compare(
            store,
            TruthKG.from_world(world),
            seeds,
            model,
            MiningConfig(rounds=rounds, seed=seed, evidence=use_evidence),
            concurrency=concurrency,
            latencies=waits,
            noise=noise,
            threads=threads,
            precision=precision,
        )
    typer.echo(
        f"command: mokg eval lightpair --model {model} --rounds {rounds} --concurrency {concurrency} "
        f"--latency {latency} --noise {noise} --seed {seed}{f' --limit {limit}' if limit else ''}"
        f"{' --evidence' if use_evidence else ''}"
        f"{f' --precision {precision}' if precision != 'fp32' else ''}"
        f"{f' --threads {threads}' if threads != 1 else ''}; "
        f"{len(seeds)} held-out seed intents"
    )
    render_table(compact(table))
    if per_relation:
        render_table(by_relation(relations))
    if out is not None:
        beside = out.with_name(f"{out.stem}-relations{out.suffix}")
        for frame, path in ((table, out), (relations, beside)):
            text = (
                frame.to_json(orient="records", indent=1)
                if path.suffix == ".json"
                else frame.to_csv(index=False)
            )
            files.write_text(path, str(text))
        typer.echo(f"wrote {out} and {beside}")


def _corpus_for_tuning(from_run: str | None, workdir: Path | None, hold_out: int, hold_out_seed: int) -> Any:
    from mining.lightpair.distill import corpus_of, hold_out_intents

    tails = store_vocabulary()
    held = hold_out_intents(hold_out, hold_out_seed, tails["Intent"])
    corpus, _ = corpus_of(find_workdir(from_run, workdir), held, tails)
    return corpus


def tune(
    adapter: Annotated[str, typer.Option(help="lora, multilora or full.")] = "multilora",
    budget: Annotated[int, typer.Option(help="LoRA rank (MultiLoRA: n modules of rank budget/n).")] = 8,
    n: Annotated[int, typer.Option(help="MultiLoRA modules per adapted matrix.")] = 4,
    from_run: Annotated[
        str | None, typer.Option(help="The mining run whose transcript is the corpus.")
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="Or the build's work dir itself.")] = None,
    steps: Annotated[int, typer.Option(help="Training steps (one task batch each).")] = 120,
    hold_out: Annotated[int, typer.Option(help="Intents kept out (as in distill).")] = 30,
    hold_out_seed: Annotated[int, typer.Option(help="Seed of the held-out intent sample.")] = 0,
    seed: Annotated[int, typer.Option(help="Seeds the split, batches and initialisation.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Save the merged model as a LightPAIR checkpoint.")] = None,
) -> None:
    """Train LightPAIR's three tasks jointly with one adapter on the MiniLM encoder; print per-task
    validation metrics (and save a servable, merged checkpoint with --out)."""
    import torch

    from mining.tuning.compare import result_row
    from mining.tuning.compare import tune as run
    from mokg.output import render_table

    torch.set_num_threads(1)
    if adapter not in ("lora", "multilora", "full"):
        raise InputError(f"--adapter must be lora, multilora or full, not {adapter!r}")
    corpus = _corpus_for_tuning(from_run, workdir, hold_out, hold_out_seed)
    config = _tune_config(adapter, budget, n, steps, seed)
    result = run(corpus, config, _model_config(), typer.echo)
    typer.echo(
        f"command: mokg lightpair tune --adapter {adapter} --budget {budget} --n {n} --steps {steps} "
        f"--seed {seed}"
    )
    import pandas as pd

    render_table(pd.DataFrame([result_row(adapter, result)]))
    if out is not None:
        _save_merged(result, corpus, config, out, hold_out, hold_out_seed)
        typer.echo(f"checkpoint {out} (adapters merged into the encoder)")


def compare_adapters(
    budget: Annotated[int, typer.Option(help="LoRA rank (MultiLoRA: n modules of rank budget/n).")] = 8,
    n: Annotated[int, typer.Option(help="MultiLoRA modules per adapted matrix.")] = 4,
    from_run: Annotated[
        str | None, typer.Option(help="The mining run whose transcript is the corpus.")
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="Or the build's work dir itself.")] = None,
    steps: Annotated[int, typer.Option(help="Training steps per method.")] = 120,
    hold_out: Annotated[int, typer.Option(help="Intents kept out (as in distill).")] = 30,
    hold_out_seed: Annotated[int, typer.Option(help="Seed of the held-out intent sample.")] = 0,
    seed: Annotated[int, typer.Option(help="Seeds the split, batches and initialisation.")] = 0,
    seeds: Annotated[
        int, typer.Option(help="Repeat with seeds SEED … SEED+N-1 and print each method's mean ± std.")
    ] = 1,
    out_dir: Annotated[Path, typer.Option(help="Where the tables and the spectrum plot go.")] = Path(
        "mokg-data/lightpair/adapters"
    ),
) -> None:
    """LoRA vs MultiLoRA vs full fine-tuning of W_q, W_v (same steps, batches, seed): per-task
    validation metrics, and the singular-value spectrum of ΔW (table + PNG; the first seed's)."""
    import pandas as pd
    import torch

    from mining.tuning.compare import compare_adapters as run
    from mining.tuning.compare import mean_std
    from mining.tuning.spectrum import plot_spectra, spectrum_table
    from mokg.output import render_table

    torch.set_num_threads(1)
    if seeds < 1:
        raise InputError(f"--seeds must be at least 1, not {seeds}")
    corpus = _corpus_for_tuning(from_run, workdir, hold_out, hold_out_seed)
    tables, spectra, png = [], [], None
    out_dir.mkdir(parents=True, exist_ok=True)
    for s in range(seed, seed + seeds):
        table, deltas = run(
            corpus, _tune_config("lora", budget, n, steps, s), _model_config(), log=typer.echo
        )
        tables.append(table.assign(seed=s))
        spectra.append(spectrum_table(deltas).assign(seed=s))
        if png is None:
            png = plot_spectra(deltas, out_dir / "spectrum.png")
    every, spectrum = pd.concat(tables, ignore_index=True), pd.concat(spectra, ignore_index=True)
    every.to_json(out_dir / "tasks.json", orient="records", indent=1)
    spectrum.to_json(out_dir / "spectrum.json", orient="records", indent=1)
    typer.echo(
        f"command: mokg lightpair compare-adapters --budget {budget} --n {n} --steps {steps} --seed {seed} "
        f"--seeds {seeds} --hold-out {hold_out} --hold-out-seed {hold_out_seed}"
    )
    if seeds == 1:
        render_table(every.drop(columns="seed"))
        render_table(spectrum.drop(columns="seed"))
    else:
        render_table(mean_std(every, "method"), title=f"per task, mean ± std over {seeds} seeds")
        render_table(mean_std(spectrum, "method"), title="ΔW spectrum, mean ± std")
    typer.echo(f"spectrum plot: {png}; tables (every seed): {out_dir}")


def _model_config() -> Any:
    from graph.schema import SCHEMA
    from mining.lightpair.model import ModelConfig

    return ModelConfig(tuple(r.name for r in SCHEMA.mined_relations()))


def _tune_config(adapter: str, budget: int, n: int, steps: int, seed: int) -> Any:
    from mining.lightpair.training import TrainConfig
    from mining.tuning.compare import TuneConfig

    return TuneConfig(
        adapter=adapter,  # type: ignore[arg-type]
        budget=budget,
        n=n,
        train=TrainConfig(epochs=1000, max_steps=steps, seed=seed),
    )


def _save_merged(result: Any, corpus: Any, config: Any, out: Path, hold_out: int, hold_out_seed: int) -> None:
    from dataclasses import asdict

    from mining.lightpair import checkpoint
    from mining.lightpair.distill import hold_out_intents, tails_of
    from mining.tuning.lora import merge

    merge(result.model.encoder)
    meta = checkpoint.CheckpointMeta(
        model=result.model.config,
        train=asdict(config.train),
        thresholds=result.thresholds,
        metrics=result.metrics,
        corpus_sha256=corpus.sha256(),
        source={"tuned": config.adapter, "budget": config.budget, "n": config.n},
        held_out=hold_out_intents(hold_out, hold_out_seed, corpus.tails.get("Intent", [])),
        heads=sorted(corpus.heads()),
        tails=corpus.tails,
    )
    checkpoint.save(out, result.model, meta, tails_of(result.model, corpus), corpus.to_json())


FEEDBACK = Path("mokg-data/lightpair/feedback.jsonl")


def feedback_import(
    file: Annotated[Path, typer.Argument(help="CSV or JSON lines with head, relation, tail, label.")],
    into: Annotated[Path, typer.Option(help="The feedback store (JSON lines).")] = FEEDBACK,
) -> None:
    """Import user feedback on triples (label 1/0, true/false, accepted/rejected, or a score in
    [0, 1]); `mokg lightpair align` learns from it with the world's truth."""
    from dataclasses import asdict

    from mining.tuning.align import Feedback, feedback_from_file

    rows = feedback_from_file(file)
    old = [Feedback(**json.loads(x)) for x in into.read_text().splitlines()] if into.exists() else []
    merged = {(f.head, f.relation, f.tail): f for f in [*old, *rows]}
    files.write_text(into, "".join(json.dumps(asdict(f)) + "\n" for f in merged.values()))
    typer.echo(f"imported {len(rows)} feedback rows from {file}; {len(merged)} in {into}")


def align(
    model: Annotated[Path, typer.Option(help="LightPAIR checkpoint dir.")] = Path("mokg-data/lightpair/ckpt"),
    from_run: Annotated[str | None, typer.Option(help="The mining run whose candidates get labels.")] = None,
    workdir: Annotated[
        list[Path] | None,
        typer.Option(
            help="Or the build's work dir itself; repeat to pool several builds' candidates (e.g. the "
            "teacher's build and a `--llm lightpair` build: reviewers labelling LightPAIR's own output)."
        ),
    ] = None,
    world: Annotated[Path, typer.Option(help="World dir whose hidden/kg labels the candidates.")] = Path(
        "mokg-data/world-demo"
    ),
    methods: Annotated[str, typer.Option(help="Comma-separated: sft, dpo, ulma.")] = "sft,dpo,ulma",
    steps: Annotated[int, typer.Option(help="Optimiser steps per method.")] = 200,
    beta: Annotated[float, typer.Option(help="β of the DPO terms.")] = 0.1,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate (default: 0.01 with --trainable calibration, else 0.001)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds batches and initialisation.")] = 0,
    feedback: Annotated[Path, typer.Option(help="Imported user feedback (used if it exists).")] = FEEDBACK,
    out: Annotated[
        Path | None,
        typer.Option(help="Save each method's aligned checkpoint as OUT/METHOD (servable, evaluable)."),
    ] = None,
    trainable: Annotated[
        str,
        typer.Option(
            help="calibration: only the scale, biases and evidence weights train (shared by all heads; "
            "the best setting in docs/lightpair.md); head: every expansion-head parameter."
        ),
    ] = "calibration",
    calibrate_share: Annotated[
        float,
        typer.Option(
            help="Keep this share of the feedback's heads out of alignment and re-choose tau_r / K_r on "
            "their labels (0: keep the distilled thresholds, calibrated against the teacher)."
        ),
    ] = 0.0,
) -> None:
    """ULMA vs pair-wise DPO vs SFT-only on the expansion policy π(tail | head, relation), from
    point-wise labels (the build's candidates vs the world's truth, plus user feedback); prints the
    hallucinated-tail rate and precision on the checkpoint's held-out seed intents before/after.

    Example: `mokg lightpair align --model CKPT --workdir BUILD --world W --methods sft,dpo,ulma
    --steps 150 --out ALIGNED`, then `mokg eval lightpair --model ALIGNED/ulma --world W`."""
    import torch

    from mining.tuning.align_run import AlignRequest, run_alignment
    from mokg.output import render_table

    torch.set_num_threads(1)

    request = AlignRequest(
        model,
        tuple(
            [find_workdir(from_run, None)]
            if from_run or not workdir
            else [find_workdir(None, w) for w in workdir]
        ),
        world,
        feedback,
        tuple(m.strip() for m in methods.split(",") if m.strip()),
        steps,
        beta,
        lr,
        seed,
        out,
        trainable,
        calibrate_share,
    )
    done = run_alignment(request)
    typer.echo(
        f"command: mokg lightpair align --model {model} --methods {methods} --steps {steps} --beta {beta} "
        f"--lr {request.rate} --trainable {trainable} --seed {seed}; "
        f"{done.rows} feedback rows ({done.accepted} accepted) from "
        f"{len(request.builds)} build(s), {done.seeds} held-out seeds"
        + ("; with evidence" if done.evidence else "")
        + (
            f"; tau_r / K_r re-chosen on {done.aside_rows} rows of {done.aside_heads} heads"
            if done.aside_rows
            else ""
        )
    )
    render_table(done.table)
    if done.saved:
        typer.echo(f"aligned checkpoints: {', '.join(map(str, done.saved))}")
