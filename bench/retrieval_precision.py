"""What bf16 encoding costs in retrieval quality (issue 17; `python -m bench.retrieval_precision --help`).

On a corpus of ``mokg eval retrieval`` (default: electronics, seed 0), for the zero-shot MiniLM and
each trained method of ``--methods`` (trained once, in fp32, as ``mokg eval retrieval`` trains it:
items read by their ``text``, epochs ``--epochs``), the items and the asked queries (``test`` and
``cold``) are encoded in fp32 and in bf16 (:mod:`loaders.precision`; MiniLM through
``make_encoder(name, precision)``, trained models through ``Mural.serve_in``). Reported per method:

- the cosine of each bf16 vector to its fp32 vector, min and median, items and queries;
- NDCG@10 and Recall@100 (:mod:`consumers.retrieval.evaluate`, exact search) per query set for
  items fp32 + queries fp32 (the reference), items fp32 + queries bf16 (``mokg search --precision
  bf16`` on a fp32 index) and items bf16 + queries bf16 (``mokg train retrieval --precision bf16``);
- the top-10 overlap of the bf16-query ranking with the fp32 one, and encoding items/s per precision
  (one pass, the machine's load printed beside: not a benchmark of speed, ``bench/retrieval.py`` is).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PAIRS = (("fp32", "fp32"), ("fp32", "bf16"), ("bf16", "bf16"))  # (items, queries)
SETS = ("test", "cold")


def _cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    keep = (na > 0) & (nb > 0)
    c = (a[keep] * b[keep]).sum(1) / (na[keep] * nb[keep])
    return float(c.min()), float(np.median(c))


def encode_both(
    method: str, corpus: Any, queries: list[str], epochs: tuple[int, int], seed: int
) -> dict[str, Any]:
    """{precision: (item vectors, query vectors, items/s)} of ``method`` (fp32 first: bf16 rounds weights)."""
    from loaders.features import make_encoder

    out: dict[str, Any] = {}
    if method == "minilm":
        items = list(corpus.items["text"])
        for p in ("fp32", "bf16"):
            enc = make_encoder("minilm", p)
            enc.encode(["warm-up"])
            t0 = time.perf_counter()
            ivec = enc.encode(items)  # no cache: every item encoded, timed
            rate = len(items) / (time.perf_counter() - t0)
            out[p] = (_unit(ivec), _unit(enc.encode(queries)), rate)  # as biencoder.embed normalises
        return out
    from consumers.retrieval.methods import train_method
    from consumers.retrieval.mural_train import TrainConfig

    cfg = TrainConfig(pretrain_epochs=epochs[0], finetune_epochs=epochs[1], seed=seed, item_field="text")
    model, cfg, note = train_method(method, corpus, cfg)
    out["note"] = note
    items = list(corpus.items[cfg.item_field].astype(str))
    for p in ("fp32", "bf16"):
        model.serve_in(p)
        model.embed(items[:8])
        t0 = time.perf_counter()
        ivec = model.embed(items)
        out[p] = (ivec, model.embed(queries), len(items) / (time.perf_counter() - t0))
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = (x / np.where(n > 0, n, 1.0)).astype(np.float32)
    return out


def measure(method: str, corpus: Any, epochs: tuple[int, int], seed: int) -> dict[str, Any]:
    """One method's row group (module doc)."""
    import pandas as pd

    from consumers.retrieval.biencoder import dense_run
    from consumers.retrieval.evaluate import evaluate

    sets = {s: q for s in SETS if len(q := corpus.select(s))}
    asked = pd.concat(list(sets.values()), ignore_index=True).drop_duplicates("query")
    ids, qids = list(corpus.items["item"]), list(asked["query"])
    vecs = encode_both(method, corpus, list(asked["text"].astype(str)), epochs, seed)
    r: dict[str, Any] = {"method": method, "note": vecs.pop("note", "")}
    (i32, q32, rate32), (i16, q16, rate16) = vecs["fp32"], vecs["bf16"]
    r["items_per_s"] = {"fp32": rate32, "bf16": rate16}
    r["cosine_items"], r["cosine_queries"] = _cosines(i16, i32), _cosines(q16, q32)
    runs = {}
    for ip, qp in PAIRS:
        runs[(ip, qp)] = dense_run(ids, vecs[ip][0], qids, vecs[qp][1], 100)
    ref, alt = runs[("fp32", "fp32")], runs[("fp32", "bf16")]
    top = [len(set(list(ref[q])[:10]) & set(list(alt[q])[:10])) / 10 for q in qids]
    r["top10_overlap_bf16_queries"] = float(np.mean(top))
    r["metrics"] = {
        f"{ip}/{qp}": {s: evaluate(run, corpus.qrels_dict(q)) for s, q in sets.items()}
        for (ip, qp), run in runs.items()
    }
    return r


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"`{r['command']}`\n",
        f"{r['corpus']} corpus, seed {r['seed']}, {r['threads']} thread(s), 1-min load {r['loadavg']:.2f}\n",
        "| method | items / queries | set | NDCG@10 | Recall@100 | ΔNDCG@10 | ΔRecall@100 |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in r["methods"]:
        base = m["metrics"]["fp32/fp32"]
        for pair, per in m["metrics"].items():
            for s, v in per.items():
                d_n, d_r = v["NDCG@10"] - base[s]["NDCG@10"], v["Recall@100"] - base[s]["Recall@100"]
                lines.append(
                    f"| {m['method']} | {pair} | {s} | {v['NDCG@10']:.4f} | {v['Recall@100']:.4f} | "
                    f"{d_n:+.4f} | {d_r:+.4f} |"
                )
    lines += [
        "",
        "| method | cosine bf16·fp32 items min / median | queries min / median | "
        "top-10 overlap (bf16 queries) | items/s fp32 | items/s bf16 |",
        "|---|---|---|---|---|---|",
    ]
    for m in r["methods"]:
        ci, cq = m["cosine_items"], m["cosine_queries"]
        lines.append(
            f"| {m['method']} | {ci[0]:.5f} / {ci[1]:.5f} | {cq[0]:.5f} / {cq[1]:.5f} | "
            f"{m['top10_overlap_bf16_queries']:.4f} | {m['items_per_s']['fp32']:.0f} | "
            f"{m['items_per_s']['bf16']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    from consumers.retrieval.corpus import electronics_corpus
    from graph import files

    ap = argparse.ArgumentParser(prog="python -m bench.retrieval_precision", description=__doc__)
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    ap.add_argument(
        "--methods", default="minilm,bibert", help="minilm and trained methods (default minilm,bibert)"
    )
    ap.add_argument("--epochs", default="1,1", help="trained methods' pre-training,fine-tuning epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/out/retrieval_precision.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    epochs = tuple(int(e) for e in args.epochs.split(","))
    corpus = electronics_corpus(seed=args.seed)
    command = "python -m bench.retrieval_precision " + shlex.join(argv if argv is not None else sys.argv[1:])
    r: dict[str, Any] = {
        "command": command,
        "corpus": corpus.name,
        "seed": args.seed,
        "threads": args.threads,
    }
    r["methods"] = [
        measure(m.strip(), corpus, (epochs[0], epochs[1]), args.seed) for m in args.methods.split(",")
    ]
    r["loadavg"] = os.getloadavg()[0]
    text = markdown(r)
    print(text, end="")
    files.write_text(args.out, text)
    files.write_text(args.out.with_suffix(".json"), json.dumps(r, indent=2))
    return r


if __name__ == "__main__":
    main()
