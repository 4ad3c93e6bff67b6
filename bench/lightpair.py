"""LightPAIR serving benchmark (run: `python -m bench.lightpair --help`).

The latency goal of issue 5 is "≥ 10× lower latency per call than the teacher server at the same
concurrency". This records the requests of one LightPAIR mining job on the checkpoint's held-out
intents (a dry run: nothing is written to the store), then replays exactly those requests, at the
same concurrency, to LightPAIR in each serving configuration (precision × torch threads) and to
the teacher server with its simulated hosted-model latency, all in this run, and prints each
configuration's mean and p95 latency per call and the teacher's mean over it (the target ratio,
≥ 10). A warm-up call precedes each replay (model load, connection). Quality is not measured here:
`mokg eval lightpair` scores the same jobs against the world's truth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

TARGET = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lightpair", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="LightPAIR checkpoint dir (mokg lightpair distill)."
    )
    parser.add_argument(
        "--store", type=Path, default=Path("mokg-data/graph"), help="Embedded store to mine from."
    )
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of the recording job.")
    parser.add_argument("--concurrency", type=int, default=16, help="Requests in flight, the same for all.")
    parser.add_argument(
        "--latency", type=float, default=0.5, help="The teacher's simulated seconds per answer."
    )
    parser.add_argument(
        "--configs",
        default="fp32:1,bf16:1,fp32:2",
        help="LightPAIR serving configurations, PRECISION:THREADS, comma-separated.",
    )
    parser.add_argument("--limit", type=int, default=None, help="Use this many held-out intents.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the rows as JSON here.")
    return parser.parse_args(argv)


def _configs(text: str) -> list[tuple[str, int]]:
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        precision, _, threads = part.partition(":")
        if precision not in ("fp32", "bf16") or not threads.isdigit() or int(threads) < 1:
            raise SystemExit(f"--configs: {part!r} is not PRECISION:THREADS (fp32 or bf16, threads ≥ 1)")
        out.append((precision, int(threads)))
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import torch

    from graph.store import StoreConfig, open_store
    from mining.lightpair.checkpoint import read_meta
    from mining.lightpair.client import LightPAIRClient
    from mining.lightpair.corpus import norm
    from mining.lightpair.evaluate import TimedClient, mine, replay
    from mining.llm.openai_http import OpenAIClient
    from mining.pipeline.build import JobParts
    from mining.pipeline.config import MiningConfig
    from mining.pipeline.embed import Embedder
    from mining.pipeline.evidence import BehaviourEvidence
    from mining.pipeline.resolve import Resolver
    from mining.pipeline.seeds import store_entities
    from mining.teacher import TeacherServer, noise_level

    args = parse_args(argv)
    configs = _configs(args.configs)
    meta = read_meta(args.model)
    held = {norm(h) for h in meta.held_out} - {norm(h) for h in meta.heads}
    with open_store(StoreConfig(backend="embedded", path=args.store)) as store:
        seeds = sorted(
            (e for e in store_entities(store, "Intent") if norm(e.name) in held), key=lambda e: e.id
        )
        if not seeds:
            raise SystemExit(f"none of {args.model}'s held-out intents is in {args.store}")
        seeds = seeds[: args.limit] if args.limit else seeds
        config = MiningConfig(rounds=args.rounds, evidence=meta.model.evidence)
        embed = Embedder()
        resolver = Resolver.from_store(store, embed, config.er_threshold)
        evidence = BehaviourEvidence.from_store(store) if config.evidence else None
        torch.set_num_threads(1)
        recorder = TimedClient(LightPAIRClient(args.model), args.concurrency)
        mine(store, recorder, config, JobParts(embed, resolver, evidence=evidence, seeds=tuple(seeds)))
    requests = recorder.requests
    print(f"recorded {len(requests)} requests of a LightPAIR job on {len(seeds)} held-out intents")
    rows: list[dict[str, Any]] = []
    for precision, threads in configs:
        served = replay(
            LightPAIRClient(args.model, threads=threads, precision=precision), requests, args.concurrency
        )
        rows.append({"system": f"LightPAIR {precision}, {threads} thread(s)", **served})
        print(rows[-1])
    with TeacherServer(None, port=0, noise=noise_level("medium", 0), latency_s=args.latency) as server:
        client = OpenAIClient(server.base_url, server.model, concurrency=args.concurrency)
        teacher = {
            "system": f"teacher ({args.latency:g} s simulated latency)",
            **replay(client, requests, args.concurrency),
        }
    for row in rows:
        row["teacher_over_this"] = round(teacher["replay_ms_mean"] / max(row["replay_ms_mean"], 1e-9), 2)
        row["meets_target"] = row["teacher_over_this"] >= TARGET
    rows.append({**teacher, "teacher_over_this": 1.0, "meets_target": False})
    print(
        f"\nrequests {len(requests)}, concurrency {args.concurrency}; "
        f"target: teacher / LightPAIR ≥ {TARGET:g}"
    )
    for row in rows:
        print(
            f"  {row['system']:<34} mean {row['replay_ms_mean']:>7.1f} ms"
            f"  p95 {row['replay_ms_p95']:>7.1f} ms"
            f"  teacher / this {row['teacher_over_this']:>6.2f}"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
