"""Figures and numbers for the data card (``loaders/WORLD.md``): `mokg world card DIR --out FIGDIR`.

Reads a generated world (visible tables, plus the hidden ones for the ground-truth figures: this
is an evaluator's view) and writes PNG plots and a ``stats.json``: sizes, sparsity, degree
distributions of users and items, domain overlap, events per domain, latent intents per user and
campaign audience sizes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graph import files
from loaders.world.layout import WorldDir, edge_file


def world_stats(world: WorldDir) -> tuple[dict[str, Any], dict[str, Any]]:
    """(numbers for the card, arrays for the plots)."""
    m = world.manifest()
    inter = pd.read_parquet(world.visible("edges", edge_file(("User", "INTERACTED", "Item"))))
    events = pd.read_parquet(world.visible("events", "interactions.parquet"), columns=["user", "domain"])
    active = pd.read_parquet(world.visible("edges", edge_file(("User", "ACTIVE_IN", "Domain"))))
    eps = pd.read_parquet(world.hidden_for_evaluation("user_intents.parquet"), columns=["user"])
    conv = pd.read_parquet(world.hidden_for_evaluation("conversions.parquet"))
    n_users, n_items = (
        m["config"]["n_users"],
        len(pd.read_parquet(world.visible("nodes", "Item.parquet"), columns=["id"])),
    )
    user_deg = inter.groupby("head").size()
    item_deg = inter.groupby("tail").size()
    per_domain = events.groupby("domain").agg(events=("user", "size"), users=("user", "nunique"))
    sets = {str(d): set(g["head"]) for d, g in active.groupby("tail")}
    ev_sets = {str(d): set(g["user"]) for d, g in events.groupby("domain")}
    domains = sorted(sets)
    overlap = pd.DataFrame(
        [[len(ev_sets.get(a, set()) & ev_sets.get(b, set())) for b in domains] for a in domains],
        index=domains,
        columns=domains,
    )
    stats = {
        "scale": m["config"]["scale"],
        "seed": m["config"]["seed"],
        "users": n_users,
        "items": n_items,
        "events": len(events),
        "interacted_edges": len(inter),
        "users_with_events": int(user_deg.size),
        "density": len(inter) / (n_users * n_items),
        "events_per_user_mean": len(events) / n_users,
        "user_degree": {
            "median": float(user_deg.median()),
            "p99": float(user_deg.quantile(0.99)),
            "max": int(user_deg.max()),
        },
        "item_degree": {
            "median": float(item_deg.median()),
            "p99": float(item_deg.quantile(0.99)),
            "max": int(item_deg.max()),
            "items_never_used": int(n_items - item_deg.size),
        },
        "top1pct_items_share": float(
            item_deg.sort_values(ascending=False).head(max(1, n_items // 100)).sum() / item_deg.sum()
        ),
        "per_domain": {
            str(d): {"events": int(ev), "users": int(us), "active_users": len(sets.get(str(d), set()))}
            for d, ev, us in zip(per_domain.index, per_domain["events"], per_domain["users"], strict=True)
        },
        "episodes_per_user_mean": len(eps) / n_users,
        "campaign_audience": {
            "mean": float(conv.groupby("campaign").size().mean()) if len(conv) else 0.0,
            "share_of_users": float(conv.groupby("campaign").size().mean() / n_users) if len(conv) else 0.0,
        },
        "files": {k: v["rows"] for k, v in m["files"].items()},
    }
    arrays = {
        "user_deg": user_deg.to_numpy(),
        "item_deg": item_deg.to_numpy(),
        "overlap": overlap,
        "per_domain": per_domain,
        "episodes": eps.groupby("user").size().to_numpy(),
        "audiences": conv.groupby("campaign").size().to_numpy(),
    }
    return stats, arrays


def _ccdf(ax: Any, values: np.ndarray, label: str) -> None:
    v = np.sort(values)
    ax.loglog(v, 1.0 - np.arange(len(v)) / len(v), marker=".", linestyle="none", markersize=2, label=label)


def write_card(directory: Path, out: Path) -> dict[str, Any]:
    """Write the plots and stats.json for the world at ``directory`` into ``out``."""
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global figure state

    stats, a = world_stats(WorldDir(directory))
    files.target(out, folder=True)
    tag = f"{stats['scale']}"
    fig = Figure(figsize=(15, 4))
    axes = fig.subplots(1, 3)
    _ccdf(axes[0], a["user_deg"], "users: items interacted with")
    _ccdf(axes[0], a["item_deg"], "items: users who interacted")
    axes[0].set(xlabel="degree", ylabel="P(degree ≥ x)", title="degree distributions (log-log CCDF)")
    axes[0].legend()
    ov = a["overlap"]
    heat = axes[1].imshow(np.log10(ov.to_numpy() + 1), cmap="viridis")
    fig.colorbar(heat, ax=axes[1], label="log10(users + 1)")
    axes[1].set(
        xticks=range(len(ov)), yticks=range(len(ov)), title="users with events in both domains (log10)"
    )
    axes[1].set_xticklabels(ov.columns, rotation=45, ha="right")
    axes[1].set_yticklabels(ov.index)
    pdm = a["per_domain"].sort_values("events")
    axes[2].barh(pdm.index, pdm["events"])
    axes[2].set(xscale="log", title="events per domain (cold-start domain: health)")
    fig.suptitle(
        f"mokg world: scale {tag}, seed {stats['seed']}: {stats['users']:,} users, "
        f"{stats['items']:,} items, {stats['events']:,} events"
    )
    fig.tight_layout()
    files.write_file(out / f"{tag}_overview.png", lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    axes[0].hist(a["episodes"], bins=range(1, int(a["episodes"].max()) + 2))
    axes[0].set(xlabel="latent intent episodes per user (hidden)", ylabel="users")
    axes[1].hist(a["audiences"], bins=20)
    axes[1].set(xlabel="converting users per campaign (hidden)", ylabel="campaigns")
    fig.tight_layout()
    files.write_file(out / f"{tag}_truth.png", lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    files.write_text(out / f"{tag}_stats.json", json.dumps(stats, indent=2))
    return stats
