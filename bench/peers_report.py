"""The report of `python -m bench.peers`: one Markdown table per split (our evaluator on every
side's scores), the notes that read it (RecBole's own evaluator, our LightGCN against RecBole's,
the quick-start anchor against its published NDCG@10) and the output folder, written aside and
renamed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PUBLISHED_NDCG10 = 0.2768  # RecBole's quick-start BPR on ml-100k, as issue 14 cites it
OUTPUTS = ("results.csv", "table.md", "peers.json")
COLUMNS = ("NDCG@10", "HR@10", "NDCG@20", "MRR")
COLD_NOTE = (
    "cold_items: every test item is unseen in training and ranked among the held-out items only. "
    "Our BPR-MF and LightGCN fit per target catalogue as in `mokg eval rec`, and the cold one has no "
    "fit rows, so they score at random; RecBole's BPR and LightGCN meet cold items only as negatives; "
    "MostPop ties them all. Only a model that reads the KG (KGIN here) can place them."
)


def within(value: float, reference: float, share: float = 0.05) -> bool:
    """``value`` within ``share`` of ``reference`` (relative; float noise at the edge forgiven)."""
    return abs(value - reference) <= share * abs(reference) + 1e-12


def markdown(rows: pd.DataFrame) -> str:
    head = ["model", "side", *COLUMNS, "s/epoch", "eval users/s", "peak MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in rows.iterrows():
        epoch = "–" if np.isnan(r["s_per_epoch"]) else f"{r['s_per_epoch']:.2f}"
        cells = [r["model"], r["side"], *(f"{r[c]:.4f}" for c in COLUMNS), epoch]
        lines.append(
            "| " + " | ".join([*cells, f"{r['eval_users_per_s']:,.0f}", f"{r['peak_mb']:,.0f}"]) + " |"
        )
    return "\n".join(lines)


def lightgcn_note(rows: pd.DataFrame) -> str | None:
    pick = {
        s: rows[(rows["model"] == "LightGCN") & (rows["side"] == s)]["NDCG@10"] for s in ("mokg", "RecBole")
    }
    if any(p.empty for p in pick.values()):
        return None
    ours, theirs = float(pick["mokg"].iloc[0]), float(pick["RecBole"].iloc[0])
    gap = ours / theirs - 1 if theirs else float("inf")
    verdict = "yes" if within(ours, theirs) else "no"
    head = "our LightGCN within 5% of RecBole's LightGCN on NDCG@10"
    return f"{head}: {verdict} ({ours:.4f} vs {theirs:.4f}, {gap:+.1%})"


def own_note(rows: pd.DataFrame) -> str | None:
    """RecBole's own evaluator on its own models (same test file): equal to ours where the target
    catalogue is every item, which checks the id mapping end to end."""
    peers = rows[(rows["side"] == "RecBole") & rows["recbole_own_ndcg10"].notna()]
    if peers.empty:
        return None
    listed = ", ".join(f"{r['model']} {r['recbole_own_ndcg10']:.4f}" for _, r in peers.iterrows())
    return f"RecBole's own evaluator, same models and test file, NDCG@10: {listed}"


def anchor_note(anchor: dict[str, Any]) -> str:
    ndcg = anchor["test_result"]["ndcg@10"]
    gap = ndcg / PUBLISHED_NDCG10 - 1
    verdict = "reproduced (within 5%)" if anchor["reproduced"] else "NOT reproduced (off by more than 5%)"
    return (
        f"anchor: RecBole's quick-start BPR on ml-100k, its own protocol (random 8:1:1, full ranking, "
        f"early stopping on MRR@10 after {anchor['epochs']} epochs, seed {anchor['config']['seed']}): "
        f"NDCG@10 {ndcg:.4f} here vs {PUBLISHED_NDCG10} published ({gap:+.1%}): {verdict}"
    )


def report(frame: pd.DataFrame, anchor: dict[str, Any] | None, command: str) -> str:
    parts = [f"`{command}`"]
    for split, rows in frame.groupby("split", sort=False):
        parts.append(f"### {split} (full ranking, our evaluator, {int(rows['users'].iloc[0])} test users)")
        parts.append(markdown(rows))
        if split == "cold_items":
            parts.append(COLD_NOTE)
        else:
            parts += [n for n in (own_note(rows), lightgcn_note(rows)) if n is not None]
    if anchor is not None:
        parts.append(anchor_note(anchor))
    return "\n\n".join(parts) + "\n"


def write_outputs(out: Path, frame: pd.DataFrame, table: str, meta: dict[str, Any]) -> None:
    from graph import files

    def write(tmp: Path) -> None:
        frame.to_csv(tmp / "results.csv", index=False)
        (tmp / "table.md").write_text(table, encoding="utf-8")
        (tmp / "peers.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")

    def claim(folder: Path) -> str | None:
        other = sorted(p.name for p in folder.iterdir() if p.name not in OUTPUTS)
        return f"it holds {', '.join(other[:5])}, not only an earlier peers run" if other else None

    files.write_folder(out, write, claim)
