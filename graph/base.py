"""What both backends share: validation, runs and versions, endpoint checks, subgraphs, stats.

A backend supplies four primitives: ``_read`` (a read-only query → DataFrame), ``_in_write_tx``
(run a unit of work in one write transaction, rolled back on any error), ``_write_nodes`` and
``_write_edges`` (apply one validated Arrow table inside that transaction).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graph.errors import InputError, QueryError
from graph.schema import EDGE_SYSTEM_PROPS, KEY, NODE_SYSTEM_PROPS, SCHEMA, Prop, PropType
from graph.store import LoadReport, StoreConfig, TableReport
from graph.subgraph import EdgeKey, GraphVersion, Subgraph
from graph.validate import ARROW_TYPES, validate_edge_rows, validate_frame, validate_node_rows
from queries.templates import system_query

T = TypeVar("T")
Executor = Callable[[str, Mapping[str, Any]], pd.DataFrame]
KEYED_LOOKUP_MAX = 20_000
_WRITE_WORDS = re.compile(
    r"\b(CREATE|MERGE|SET|DELETE|DETACH|REMOVE|DROP|ALTER|COPY|LOAD|INSTALL|FOREACH|IMPORT)\b",
    re.IGNORECASE,
)
_LITERALS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.S)
_HEAD_TAIL = (Prop("head", PropType.STRING), Prop("tail", PropType.STRING))


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def writes_data(query: str) -> bool:
    """True if the Cypher text (literals and comments ignored) contains a write clause."""
    return bool(_WRITE_WORDS.search(_LITERALS.sub(" ", query)))


def edge_key_name(key: EdgeKey) -> str:
    return f"({key[0]})-[:{key[1]}]->({key[2]})"


def rows_table(rows: list[dict[str, Any]], props: Sequence[Prop]) -> pa.Table:
    """Validated rows as an Arrow table typed by the schema."""
    by_name = {p.name: p for p in props}
    cols = list(rows[0]) if rows else []
    fields = [pa.field(c, ARROW_TYPES[by_name[c].type]) for c in cols]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


class BaseStore:
    backend = "base"
    dialect = "common"

    def __init__(self, config: StoreConfig) -> None:
        self.config = config

    # ---- primitives a backend implements -------------------------------------------------
    def _read(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def _in_write_tx(self, work: Callable[[Executor], T]) -> T:
        raise NotImplementedError

    def _write_nodes(
        self, ex: Executor, label: str, table: pa.Table, run_id: str, now: datetime
    ) -> TableReport:
        raise NotImplementedError

    def _write_edges(
        self, ex: Executor, key: EdgeKey, table: pa.Table, run_id: str, now: datetime
    ) -> TableReport:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # ---- shared helpers --------------------------------------------------------------------
    def _q(self, name: str, **slots: str | int) -> str:
        return system_query(self.dialect, name, **slots)

    def _write_batch(self, ex: Executor, query: str, rows: Any, params: Mapping[str, Any]) -> None:
        """One UNWIND batch. (A single method so tests can make it fail mid-transaction.)"""
        ex(query, {**params, "rows": list(rows)})

    @staticmethod
    def _set_clause(var: str, columns: Sequence[str], skip: frozenset[str], source: str = "r.") -> str:
        """``var.col = coalesce(<source>col, var.col)``: a given value wins, a missing one keeps."""
        parts = [f"{var}.{c} = coalesce({source}{c}, {var}.{c})" for c in columns if c not in skip]
        return ", ".join(parts) or f"{var}.id = {var}.id"

    def _known_ids(self, label: str, ids: Sequence[str]) -> set[str]:
        lab = SCHEMA.label(label).name
        if len(ids) > KEYED_LOOKUP_MAX:
            found = self._read(self._q("all_ids", label=lab))
        else:
            found = self._read(self._q("existing_ids", label=lab), {"ids": list(ids)})
        return set(found["id"]) if len(found) else set()

    # ---- runs and versions -------------------------------------------------------------------
    def start_run(self, kind: str, note: str = "", source: str | None = None) -> str:
        seq_df = self._read(self._q("max_run_seq"))
        last = seq_df["seq"].iloc[0] if len(seq_df) else None
        seq = 1 if last is None or pd.isna(last) else int(last) + 1
        run_id = f"{kind}-{utcnow():%Y%m%dT%H%M%S}-{seq}"
        params = {
            "id": run_id,
            "seq": seq,
            "kind": kind,
            "status": "running",
            "note": note,
            "source": source or kind,
            "now": utcnow(),
        }
        self._in_write_tx(lambda ex: ex(self._q("upsert_run"), params))
        return run_id

    def finish_run(self, run_id: str, *, ok: bool = True) -> None:
        params = {"id": run_id, "status": "done" if ok else "failed", "now": utcnow()}
        self._in_write_tx(lambda ex: ex(self._q("finish_run"), params))

    @contextmanager
    def run_context(self, kind: str, note: str = "") -> Iterator[str]:
        """A run that is marked done when the block ends and failed if it raises."""
        run_id = self.start_run(kind, note)
        try:
            yield run_id
        except BaseException:
            self.finish_run(run_id, ok=False)
            raise
        self.finish_run(run_id, ok=True)

    def runs(self) -> pd.DataFrame:
        return self._read(self._q("list_runs"))

    def _require_run(self, run_id: str) -> None:
        runs = self.runs()
        match = runs[runs["id"] == run_id] if len(runs) else runs
        if not len(match):
            raise InputError(
                f"unknown run id {run_id!r}: start one with store.start_run(kind) "
                "(every write belongs to a run)"
            )

    def version(self) -> GraphVersion:
        df = self._read(self._q("latest_run"))
        seq, run_id = (int(df["seq"].iloc[0]), str(df["id"].iloc[0])) if len(df) else (0, None)
        return GraphVersion(self.backend, SCHEMA.version, seq, run_id)

    # ---- writes ----------------------------------------------------------------------------
    def upsert_nodes(self, label: str, rows: Sequence[Mapping[str, Any]], *, run_id: str) -> TableReport:
        """MERGE nodes on their key; properties given are updated, others kept."""
        checked = validate_node_rows(label, rows)
        table = rows_table(checked, SCHEMA.label(label).props)
        return self._load(run_id, {label: table}, {}).nodes[label]

    def upsert_edges(
        self,
        rel_type: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        run_id: str,
        head: str | None = None,
        tail: str | None = None,
    ) -> TableReport:
        """MERGE edges on (head, type, tail); both endpoints must exist already."""
        h, t = SCHEMA.endpoints(rel_type, head, tail)
        checked = validate_edge_rows(rel_type, rows)
        table = rows_table(checked, (*SCHEMA.rel(rel_type).props, *_HEAD_TAIL))
        return self._load(run_id, {}, {(h, rel_type, t): table}).edges[edge_key_name((h, rel_type, t))]

    def bulk_load(
        self,
        *,
        run_id: str,
        nodes: Mapping[str, pd.DataFrame] | None = None,
        edges: Mapping[str, pd.DataFrame] | Mapping[EdgeKey, pd.DataFrame] | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> LoadReport:
        """Load whole frames at once (the fast path); validated first, then one transaction."""
        node_tables: dict[str, pa.Table] = {}
        for label, frame in (nodes or {}).items():
            props = SCHEMA.label(label).props
            allowed = [p for p in props if p.name not in NODE_SYSTEM_PROPS]
            node_tables[label] = validate_frame(f"{label} nodes", frame, allowed, [KEY])
        edge_tables: dict[EdgeKey, pa.Table] = {}
        for spec, frame in (edges or {}).items():
            key = self._edge_key(spec)
            rel_props = [p for p in SCHEMA.rel(key[1]).props if p.name not in EDGE_SYSTEM_PROPS]
            table = validate_frame(edge_key_name(key), frame, [*rel_props, *_HEAD_TAIL], ["head", "tail"])
            edge_tables[key] = _with_confidence(edge_key_name(key), table)
        return self._load(run_id, node_tables, edge_tables, progress)

    @staticmethod
    def _edge_key(spec: str | EdgeKey) -> EdgeKey:
        if isinstance(spec, str):
            h, t = SCHEMA.endpoints(spec)
            return (h, spec, t)
        h, t = SCHEMA.endpoints(spec[1], spec[0], spec[2])
        return (h, spec[1], t)

    def _load(
        self,
        run_id: str,
        nodes: dict[str, pa.Table],
        edges: dict[EdgeKey, pa.Table],
        progress: Callable[[str, int], None] | None = None,
    ) -> LoadReport:
        self._require_run(run_id)
        for key, table in edges.items():
            self._check_endpoints(key, table, nodes)
        now = utcnow()
        report = LoadReport(run_id)

        def work(ex: Executor) -> None:
            for label, table in nodes.items():
                report.nodes[label] = self._write_nodes(ex, label, table, run_id, now)
                if progress:
                    progress(label, table.num_rows)
            for key, table in edges.items():
                report.edges[edge_key_name(key)] = self._write_edges(ex, key, table, run_id, now)
                if progress:
                    progress(edge_key_name(key), table.num_rows)

        self._in_write_tx(work)
        return report

    def _check_endpoints(self, key: EdgeKey, table: pa.Table, nodes: dict[str, pa.Table]) -> None:
        for side, label in (("head", key[0]), ("tail", key[2])):
            ids = pc.unique(table.column(side)).to_pylist()
            incoming = set(nodes[label].column(KEY).to_pylist()) if label in nodes else set()
            wanted = [i for i in ids if i not in incoming]
            missing = set(wanted) - self._known_ids(label, wanted) if wanted else set()
            if missing:
                col = table.column(side).to_pylist()
                row = next(i for i, v in enumerate(col) if v in missing)
                raise InputError(
                    f"{edge_key_name(key)} row {row}: {side} {col[row]!r} is not a {label} in the "
                    f"store ({len(missing)} unknown {label} id(s) in all); write those nodes first "
                    "or load them in the same bulk_load"
                )

    # ---- reads -----------------------------------------------------------------------------
    def run(
        self, query: str, params: Mapping[str, Any] | None = None, *, read_only: bool = True
    ) -> pd.DataFrame:
        """Run a named query from ``queries/library`` or Cypher text. Read-only unless asked."""
        from queries.library import is_query_name, load_library

        if is_query_name(query):
            named = load_library().get(query)
            text, bound = named.bind(self.dialect, params or {})
            if named.writes and read_only:
                raise QueryError(f"query {query!r} writes; pass read_only=False (CLI: --write)")
            return self._execute(text, bound, read_only=read_only)
        if read_only and writes_data(query):
            raise QueryError(
                "this Cypher writes to the graph but the call is read-only; "
                "rerun with --write (or read_only=False) if you mean it"
            )
        return self._execute(query, dict(params or {}), read_only=read_only)

    def _execute(self, query: str, params: dict[str, Any], *, read_only: bool) -> pd.DataFrame:
        if read_only:
            return self._read(query, params)
        return self._in_write_tx(lambda ex: ex(query, params))

    def _node_columns(self, label: str) -> str:
        return ", ".join(f"n.{p.name} AS {p.name}" for p in SCHEMA.label(label).props)

    def _edge_columns(self, rel_type: str) -> str:
        return ", ".join(f"e.{p.name} AS {p.name}" for p in SCHEMA.rel(rel_type).props)

    def _fetch_nodes(self, label: str, ids: Sequence[str] | None) -> pd.DataFrame:
        lab = SCHEMA.label(label).name
        cols = self._node_columns(lab)
        if ids is None:
            return self._read(self._q("fetch_nodes", label=lab, columns=cols))
        if not ids:
            return pd.DataFrame(columns=[p.name for p in SCHEMA.label(lab).props])
        return self._read(self._q("fetch_nodes_by_id", label=lab, columns=cols), {"ids": list(ids)})

    def node_table(self, label: str, columns: Sequence[str] = ()) -> pd.DataFrame:
        """All nodes of ``label`` as a frame: ``id`` plus the named properties (validated)."""
        lab = SCHEMA.label(label)
        names = [KEY, *(lab.prop(c).name for c in columns if c != KEY)]
        fields = ", ".join(f"n.{c} AS {c}" for c in names)
        return _typed(self._read(self._q("fetch_nodes", label=lab.name, columns=fields)), names)

    def edge_table(self, key: str | EdgeKey, columns: Sequence[str] = ()) -> pd.DataFrame:
        """All edges of one (head, type, tail) as a frame: ``head``, ``tail`` plus the named properties."""
        h, r, t = self._edge_key(key)
        rel = SCHEMA.rel(r)
        names = [rel.prop(c).name for c in columns]
        fields = ", ".join(f"e.{c} AS {c}" for c in names) or "e.confidence AS confidence"
        df = self._read(self._q("fetch_edges", head=h, rel=r, tail=t, columns=fields))
        return _typed(df, ["head", "tail", *names])

    def _khop(self, seeds: Mapping[str, Sequence[str]], hops: int) -> dict[str, set[str]]:
        if not 1 <= hops <= 5:
            raise InputError(f"hops must be between 1 and 5, got {hops}")
        reached: dict[str, set[str]] = {}
        for label, ids in seeds.items():
            lab = SCHEMA.label(label).name
            reached.setdefault(lab, set()).update(ids)
            df = self._read(self._q("khop_ids", label=lab, hops=hops), {"ids": list(ids)})
            for lbl, i in zip(df["label"], df["id"], strict=True):
                reached.setdefault(str(lbl), set()).add(str(i))
        return reached

    def subgraph(
        self,
        labels: Sequence[str] | None = None,
        rel_types: Sequence[str] | None = None,
        seeds: Mapping[str, Sequence[str]] | None = None,
        hops: int = 1,
    ) -> Subgraph:
        """Nodes of ``labels`` and edges of ``rel_types`` among them (all MoKG ones by default);
        with ``seeds`` ({label: [ids]}), only the ``hops``-hop neighbourhood of those seeds."""
        version = self.version()
        wanted = [SCHEMA.label(x).name for x in (labels or SCHEMA.data_labels())]
        rels = [SCHEMA.rel(r) for r in (rel_types or list(SCHEMA.rel_types))]
        reached = self._khop(seeds, hops) if seeds else None
        sub = Subgraph(version)
        for label in wanted:
            ids = None if reached is None else sorted(reached.get(label, set()))
            df = self._fetch_nodes(label, ids)
            if len(df):
                sub.nodes[label] = df.reset_index(drop=True)
        for rel in rels:
            for h, t in rel.endpoints:
                if h in sub.nodes and t in sub.nodes:
                    df = self.edge_table((h, rel.name, t), [p.name for p in rel.props])
                    if df.empty:
                        continue
                    keep = df["head"].isin(sub.nodes[h][KEY]) & df["tail"].isin(sub.nodes[t][KEY])
                    if keep.any():
                        sub.edges[(h, rel.name, t)] = df[keep].reset_index(drop=True)
        return sub

    def stats(self) -> dict[str, Any]:
        nodes = {
            label: int(self._read(self._q("count_nodes", label=label))["c"].iloc[0])
            for label in SCHEMA.labels
        }
        edges: dict[str, int] = {}
        for rel in SCHEMA.rel_types.values():
            for h, t in rel.endpoints:
                df = self._read(self._q("count_edges", head=h, rel=rel.name, tail=t))
                n = int(df["c"].iloc[0])
                if n:
                    edges[edge_key_name((h, rel.name, t))] = n
        return {
            "store": self.config.describe(),
            "version": self.version().as_dict(),
            "nodes": {k: v for k, v in nodes.items() if v},
            "edges": edges,
            "total_nodes": sum(v for k, v in nodes.items() if k != "Run"),
            "total_edges": sum(edges.values()),
            "runs": nodes.get("Run", 0),
        }

    def delete_run(self, run_id: str) -> dict[str, int]:
        """Remove the edges a run created, then its nodes that no other edge still uses."""
        self._require_run(run_id)
        counts = {"edges_deleted": 0, "nodes_deleted": 0, "nodes_kept": 0}
        p = {"run_id": run_id}

        def work(ex: Executor) -> None:
            for rel in SCHEMA.rel_types.values():
                for h, t in rel.endpoints:
                    slots = {"head": h, "rel": rel.name, "tail": t}
                    counts["edges_deleted"] += int(ex(self._q("count_run_edges", **slots), p)["c"].iloc[0])
                    ex(self._q("delete_run_edges", **slots), p)
            for label in SCHEMA.data_labels():
                before = int(ex(self._q("count_run_nodes", label=label), p)["c"].iloc[0])
                ex(self._q("delete_run_nodes", label=label), p)
                after = int(ex(self._q("count_run_nodes", label=label), p)["c"].iloc[0])
                counts["nodes_deleted"] += before - after
                counts["nodes_kept"] += after
            ex(self._q("delete_run_node"), {"id": run_id})

        self._in_write_tx(work)
        return counts


def _typed(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``df`` with exactly ``columns`` (some Bolt servers send no column names for no rows)."""
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return df[columns]


def _with_confidence(where: str, table: pa.Table) -> pa.Table:
    if "confidence" not in table.column_names:
        return table.append_column("confidence", pa.array([1.0] * table.num_rows, pa.float64()))
    filled = pc.fill_null(table.column("confidence"), 1.0)  # like upsert_edges: absent means observed
    table = table.set_column(table.column_names.index("confidence"), "confidence", filled)
    conf = filled.to_numpy(zero_copy_only=False)
    bad = ~((conf >= 0.0) & (conf <= 1.0))
    if bad.any():
        row = int(bad.argmax())
        raise InputError(f"{where}: confidence must lie in [0, 1]; row {row} holds {conf[row]}")
    return table
