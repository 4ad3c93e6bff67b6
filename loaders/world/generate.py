"""`mokg world generate`: write a seeded world to Parquet, streaming users chunk by chunk.

The catalogue and campaigns are built once; users, their episodes, events, searches, impressions and
conversions are generated per chunk of ``chunk_users`` (seeded by (seed, chunk), so the output
does not depend on anything but the config) and appended to the Parquet files, so memory stays
bounded at the benchmark scale. The manifest (``world.json``) records the config, the ontology
version and hash, and every file with its row count and visibility; it holds no wall-clock time,
so the same config writes the same bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from graph import files
from graph.schema import SCHEMA
from loaders.world.campaigns import conversions, plan_campaigns, searches
from loaders.world.catalogue import Catalogue, build_catalogue
from loaders.world.config import WorldConfig
from loaders.world.documents import write_documents
from loaders.world.impressions import ClickModel, build_click_model, impression_tables
from loaders.world.layout import MANIFEST, WorldDir, edge_file
from loaders.world.ontology import Ontology, load_ontology
from loaders.world.population import Behaviour, Chunk, build_behaviour, generate_chunk

FORMAT_VERSION = "1"
TS = pa.timestamp("us")


def _ts(cfg: WorldConfig, day: np.ndarray) -> pd.DatetimeIndex:
    return pd.Timestamp(cfg.start) + pd.to_timedelta(np.round(day * 86400), unit="s")


def user_id(index: np.ndarray) -> list[str]:
    return [f"u_{i:07d}" for i in index]


class ParquetSink:
    """Appends frames to Parquet files under one root; counts rows; writes atomically on close."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = {}

    def write(self, rel: str, frame: pd.DataFrame, schema: pa.Schema | None) -> None:
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False).replace_schema_metadata(None)
        self.write_table(rel, table)

    def write_table(self, rel: str, table: pa.Table, **options: Any) -> None:
        """Append ``table``; ``options`` go to the ParquetWriter when the file is opened."""
        if rel not in self.writers:
            path = self.root / (rel + ".tmp")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writers[rel] = pq.ParquetWriter(path, table.schema, compression="zstd", **options)
            self.rows[rel] = 0
        self.writers[rel].write_table(table)
        self.rows[rel] += table.num_rows

    def close(self) -> dict[str, int]:
        for rel, writer in self.writers.items():
            writer.close()
            os.replace(self.root / (rel + ".tmp"), self.root / rel)
        return self.rows


def _schema(label: str, columns: list[str]) -> pa.Schema:
    from graph.validate import ARROW_TYPES

    lab = SCHEMA.label(label)
    return pa.schema([pa.field(c, ARROW_TYPES[lab.prop(c).type]) for c in columns])


def _edge_schema(rel: str, columns: list[str]) -> pa.Schema:
    from graph.validate import ARROW_TYPES

    r = SCHEMA.rel(rel)
    fields = [pa.field("head", pa.string()), pa.field("tail", pa.string())]
    return pa.schema(fields + [pa.field(c, ARROW_TYPES[r.prop(c).type]) for c in columns])


def _write_catalogue(sink: ParquetSink, onto: Ontology, cat: Catalogue, campaigns: pd.DataFrame) -> None:
    src = f"world-ontology-v{onto.version}"
    doms = pd.DataFrame(
        [
            {"id": d.id, "name": d.name, "description": d.description, "cold_start": d.cold_start}
            for d in sorted(onto.domains.values(), key=lambda d: d.id)
        ]
    )
    sink.write(
        "visible/nodes/Domain.parquet",
        doms.assign(source=src),
        _schema("Domain", ["id", "name", "description", "cold_start", "source"]),
    )
    cats = pd.DataFrame(
        [
            {"id": c.id, "name": c.name, "level": c.level}
            for c in sorted(onto.categories.values(), key=lambda c: c.id)
        ]
    )
    sink.write(
        "visible/nodes/Category.parquet",
        cats.assign(source=src),
        _schema("Category", ["id", "name", "level", "source"]),
    )
    ints = pd.DataFrame(
        [
            {"id": i.id, "name": i.name, "description": i.description}
            for i in sorted(onto.intents.values(), key=lambda i: i.id)
        ]
    )
    sink.write(
        "visible/nodes/Intent.parquet",
        ints.assign(source=src),
        _schema("Intent", ["id", "name", "description", "source"]),
    )
    brands = pd.concat(
        [
            pd.DataFrame(
                [{"id": b.id, "name": b.name} for b in sorted(onto.brands.values(), key=lambda b: b.id)]
            ),
            cat.house_brands,
        ],
        ignore_index=True,
    )
    sink.write(
        "visible/nodes/Brand.parquet", brands.assign(source=src), _schema("Brand", ["id", "name", "source"])
    )
    items = cat.items[["id", "name", "kind", "title", "description", "price"]].assign(source="world")
    sink.write("visible/nodes/Item.parquet", items, _schema("Item", list(items.columns)))
    sub = pd.DataFrame(
        [
            {"head": c.id, "tail": c.parent}
            for c in sorted(onto.categories.values(), key=lambda c: c.id)
            if c.parent
        ]
    )
    sink.write(
        "visible/edges/" + edge_file(("Category", "SUBCATEGORY_OF", "Category")),
        sub,
        _edge_schema("SUBCATEGORY_OF", []),
    )
    for key, frame in (
        (("Item", "BELONGS_TO", "Category"), cat.items[["id", "leaf"]]),
        (("Item", "MADE_BY", "Brand"), cat.items[["id", "brand"]]),
        (("Item", "IN_DOMAIN", "Domain"), cat.items[["id", "domain"]]),
        (("Campaign", "IN_DOMAIN", "Domain"), campaigns[["id", "domain"]]),
    ):
        sink.write(
            "visible/edges/" + edge_file(key),
            frame.set_axis(["head", "tail"], axis=1),
            _edge_schema(key[1], []),
        )


def _write_truth_kg(sink: ParquetSink, onto: Ontology) -> None:
    by_key: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in onto.relations:
        head = "Intent" if r.head.startswith("int_") else "Category"
        tail = "Intent" if r.tail.startswith("int_") else "Category"
        by_key.setdefault((head, r.type, tail), []).append(
            {"head": r.head, "tail": r.tail, "confidence": r.weight}
        )
    for key, rows in sorted(by_key.items()):
        sink.write("hidden/kg/" + edge_file(key), pd.DataFrame(rows), _edge_schema(key[1], ["confidence"]))


def _write_chunk(
    sink: ParquetSink,
    onto: Ontology,
    b: Behaviour,
    cat: Catalogue,
    cfg: WorldConfig,
    chunk: Chunk,
    campaigns: pd.DataFrame,
    acc: dict[str, list[pd.DataFrame]],
    clicks: ClickModel | None,
) -> None:
    rng = np.random.default_rng([cfg.seed, 3, int(chunk.users[0])])
    uid = np.array(user_id(chunk.users), dtype=object)
    u0 = int(chunk.users[0])
    sink.write(
        "visible/nodes/User.parquet",
        pd.DataFrame({"id": uid, "name": uid, "source": "world"}),
        _schema("User", ["id", "name", "source"]),
    )
    ui, di = np.nonzero(chunk.active)
    sink.write(
        "visible/edges/" + edge_file(("User", "ACTIVE_IN", "Domain")),
        pd.DataFrame({"head": uid[ui], "tail": np.array(cat.domains)[di]}),
        _edge_schema("ACTIVE_IN", []),
    )
    ev = chunk.events
    items = cat.items["id"].to_numpy()
    dom = np.array(cat.domains)[cat.leaf_domain[ev["leaf"].to_numpy()]]
    log = pd.DataFrame(
        {
            "user": uid[ev["user"].to_numpy() - u0],
            "item": items[ev["item"].to_numpy()],
            "domain": dom,
            "ts": _ts(cfg, ev["day"].to_numpy()),
            "kind": np.where(ev["purchase"].to_numpy(), "purchase", "click"),
        }
    )
    sink.write(
        "visible/events/interactions.parquet",
        log,
        pa.schema(
            [
                ("user", pa.string()),
                ("item", pa.string()),
                ("domain", pa.string()),
                ("ts", TS),
                ("kind", pa.string()),
            ]
        ),
    )
    agg = (
        log.assign(purchase=log["kind"] == "purchase")
        .groupby(["user", "item"], sort=True)
        .agg(ts=("ts", "max"), count=("ts", "size"), domain=("domain", "first"), purchase=("purchase", "any"))
        .reset_index()
    )
    inter = pd.DataFrame(
        {
            "head": agg["user"],
            "tail": agg["item"],
            "kind": np.where(agg["purchase"], "purchase", "click"),
            "ts": agg["ts"],
            "domain": agg["domain"],
            "count": agg["count"].astype("int64"),
        }
    )
    sink.write(
        "visible/edges/" + edge_file(("User", "INTERACTED", "Item")),
        inter,
        _edge_schema("INTERACTED", ["kind", "ts", "domain", "count"]),
    )
    s = searches(onto, b, cat, cfg, ev, rng)
    slog = pd.DataFrame(
        {
            "user": uid[s["user"].to_numpy() - u0],
            "query": s["query"],
            "text": s["text"],
            "item": items[s["item"].to_numpy()],
            "ts": _ts(cfg, s["day"].to_numpy()),
        }
    )
    sink.write(
        "visible/events/searches.parquet",
        slog,
        pa.schema(
            [
                ("user", pa.string()),
                ("query", pa.string()),
                ("text", pa.string()),
                ("item", pa.string()),
                ("ts", TS),
            ]
        ),
    )
    searched = slog.groupby(["user", "query"], sort=True)["ts"].max().reset_index()
    sink.write(
        "visible/edges/" + edge_file(("User", "SEARCHED", "Query")),
        searched.set_axis(["head", "tail", "ts"], axis=1),
        _edge_schema("SEARCHED", ["ts"]),
    )
    if clicks is not None:
        ts = np.concatenate([log["ts"].to_numpy(), slog["ts"].to_numpy()])
        for shown, truth in impression_tables(clicks, cfg, chunk, s, uid, ts):
            # no dictionary for the unique request ids or p_click: faster, and smaller
            sink.write_table(
                "visible/events/impressions.parquet",
                shown,
                use_dictionary=["user", "query", "item", "domain"],
            )
            sink.write_table("hidden/click_model.parquet", truth, use_dictionary=["item"])
    acc["queries"].append(slog[["query", "text"]].drop_duplicates("query"))
    acc["clicks"].append(slog[["query", "item"]].drop_duplicates())
    eps = chunk.episodes
    sink.write(
        "hidden/user_intents.parquet",
        pd.DataFrame(
            {
                "user": uid[eps["user"].to_numpy() - u0],
                "intent": np.array(b.intent_ids)[eps["intent"].to_numpy()],
                "start": _ts(cfg, eps["start"].to_numpy()),
                "end": _ts(cfg, eps["end"].to_numpy()),
                "weight": eps["weight"],
            }
        ),
        pa.schema(
            [
                ("user", pa.string()),
                ("intent", pa.string()),
                ("start", TS),
                ("end", TS),
                ("weight", pa.float64()),
            ]
        ),
    )
    conv = conversions(campaigns, chunk, cat, cfg, rng)
    sink.write(
        "hidden/conversions.parquet",
        pd.DataFrame(
            {
                "campaign": conv["campaign"].astype(str),
                "user": uid[conv["user"].to_numpy(dtype=np.int64) - u0],
            }
        ),
        pa.schema([("campaign", pa.string()), ("user", pa.string())]),
    )
    acc["converters"].append(conv.groupby("campaign").size().rename("n").reset_index())


def _write_finals(
    sink: ParquetSink,
    cfg: WorldConfig,
    b: Behaviour,
    campaigns: pd.DataFrame,
    acc: dict[str, list[pd.DataFrame]],
) -> None:
    queries = pd.concat(acc["queries"]).drop_duplicates("query").sort_values("query")
    sink.write(
        "visible/nodes/Query.parquet",
        pd.DataFrame(
            {"id": queries["query"], "name": queries["text"], "text": queries["text"], "source": "world"}
        ),
        _schema("Query", ["id", "name", "text", "source"]),
    )
    clicks = pd.concat(acc["clicks"]).drop_duplicates().sort_values(["query", "item"])
    sink.write(
        "visible/edges/" + edge_file(("Query", "CLICKED", "Item")),
        clicks.set_axis(["head", "tail"], axis=1),
        _edge_schema("CLICKED", []),
    )
    conv = (
        pd.concat(acc["converters"]).groupby("campaign")["n"].sum()
        if acc["converters"]
        else pd.Series(dtype=int)
    )
    camp = pd.DataFrame(
        {
            "id": campaigns["id"],
            "name": campaigns["name"],
            "description": campaigns["description"],
            "budget": [int(max(conv.get(c, 0), 1)) for c in campaigns["id"]],
            "source": "world",
        }
    )
    sink.write("visible/nodes/Campaign.parquet", camp, _schema("Campaign", list(camp.columns)))
    targets = [
        {"head": cid, "tail": b.intent_ids[i]}
        for cid, ints in zip(campaigns["id"], campaigns["intents"], strict=True)
        for i in ints
    ]
    sink.write(
        "visible/edges/" + edge_file(("Campaign", "TARGETS", "Intent")),
        pd.DataFrame(targets),
        _edge_schema("TARGETS", []),
    )
    windows = pd.DataFrame(
        {
            "id": campaigns["id"],
            "domain": campaigns["domain"],
            "start": _ts(cfg, campaigns["start"].to_numpy()),
            "end": _ts(cfg, campaigns["end"].to_numpy()),
            "intents": [",".join(b.intent_ids[i] for i in c) for c in campaigns["intents"]],
        }
    )
    sink.write("hidden/campaign_windows.parquet", windows, None)


def generate_world(
    cfg: WorldConfig, out: Path, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Write the world for ``cfg`` as the folder ``out``; return the manifest.

    The world is written aside and swapped in (:func:`graph.files.write_folder`). A folder that
    exists is replaced only if it is empty or holds a world and nothing else (see
    :func:`claim_world`); a folder with any file of the user's is refused, never deleted.
    """
    manifest: dict[str, Any] = {}
    files.write_folder(out, lambda tmp: manifest.update(_generate(cfg, tmp, progress)), claim_world)
    WorldDir(out).manifest()
    return manifest


def claim_world(root: Path) -> str | None:
    """None if ``root`` holds a world and nothing else (it may be replaced), else why not."""
    try:
        listed = set(json.loads((root / MANIFEST).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"it is not a world folder (no readable {MANIFEST})"
    foreign = files.foreign_files(root, lambda rel: rel == MANIFEST or rel in listed)
    if foreign:
        return f"it holds {foreign[0]!r}, which is not part of a world"
    return None


def _generate(cfg: WorldConfig, tmp: Path, progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    onto = load_ontology()
    cat = build_catalogue(onto, cfg.n_items, cfg.popularity_alpha, np.random.default_rng([cfg.seed, 0]))
    b = build_behaviour(onto, cat)
    campaigns = plan_campaigns(onto, b, cat, cfg)
    sink = ParquetSink(tmp)
    _write_catalogue(sink, onto, cat, campaigns)
    _write_truth_kg(sink, onto)
    acc: dict[str, list[pd.DataFrame]] = {"queries": [], "clicks": [], "converters": []}
    clicks = build_click_model(onto, b, cat) if cfg.impression_page_size > 0 else None
    n_chunks = -(-cfg.n_users // cfg.chunk_users)
    for c in range(n_chunks):
        _write_chunk(sink, onto, b, cat, cfg, generate_chunk(b, cat, cfg, c), campaigns, acc, clicks)
        if progress:
            progress(c + 1, n_chunks)
    _write_finals(sink, cfg, b, campaigns, acc)
    rows = sink.close()
    rows |= write_documents(tmp, onto, cat, campaigns, b.intent_ids, cfg.n_documents, cfg.seed)
    manifest = {
        "format_version": FORMAT_VERSION,
        "config": cfg.as_dict(),
        "ontology": {"version": onto.version, "sha256": onto.content_hash()},
        "schema_version": SCHEMA.version,
        "files": {k: {"rows": v, "visibility": k.split("/")[0]} for k, v in sorted(rows.items())},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
