"""What both backends share: validation, runs and versions, endpoint checks, subgraphs, stats.

A backend supplies the primitives: ``_read`` (an internal read-only query → DataFrame),
``_in_write_tx`` (run a unit of work in one write transaction, rolled back on any error),
``_stored`` (the stored rows of a table for some keys), ``_insert`` and ``_update`` (write rows
inside that transaction) and ``_user_read`` / ``_user_statement`` (a person's query, one
statement, under the configured limits, read-only by the database's own means).

Every write compares the incoming rows with the stored ones (:mod:`graph.writes`): new rows are
inserted, changed rows updated (or kept, for a load that keeps existing rows), unchanged rows
skipped, and the before-image of every row a run changes but did not create is written in the same
transaction (:mod:`graph.changes`), so :meth:`BaseStore.delete_run` can restore it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import pandas as pd
import pyarrow as pa

from graph.changes import (
    Target,
)
from graph.declared import declaration_frame, extended_schema
from graph.errors import InputError, MokgError, QueryError
from graph.guard import check_query_text
from graph.removal import remove
from graph.runs import ADHOC_KIND, adhoc_note, warn_interrupted, writer
from graph.schema import (
    DECLARED,
    EDGE_SYSTEM_PROPS,
    KEY,
    NODE_SYSTEM_PROPS,
    SCHEMA,
    RelType,
    Schema,
)
from graph.store import LoadReport, StoreConfig, TableReport
from graph.subgraph import EdgeKey, GraphVersion, Subgraph
from graph.tables import HEAD_TAIL, edge_key_name, rows_table, with_columns, with_confidence
from graph.validate import validate_edge_rows, validate_frame, validate_node_rows
from graph.writes import check_endpoints, write_table
from queries.templates import system_query

T = TypeVar("T")
Executor = Callable[[str, Mapping[str, Any]], pd.DataFrame]
KEYED_LOOKUP_MAX = 20_000
READ_ONLY_REFUSAL = (
    "this Cypher writes to the graph but the call is read-only; "
    "rerun with --write (or read_only=False) if you mean it"
)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class BaseStore:
    backend = "base"
    dialect = "common"

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self._live_runs: set[str] = set()  # runs this store object is writing
        self._schema: Schema | None = None  # read from the store when first needed

    # ---- primitives a backend implements -------------------------------------------------
    def _read(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def _in_write_tx(self, work: Callable[[Executor], T], timeout_s: float = 0.0) -> T:
        raise NotImplementedError

    def _stored(self, ex: Executor, target: Target, keys: pd.DataFrame) -> pd.DataFrame:
        """The stored rows of ``target`` (key columns and every property) matching ``keys``."""
        raise NotImplementedError

    def _insert(self, ex: Executor, target: Target, table: pa.Table, run_id: str, now: datetime) -> None:
        """Create the rows of ``table`` (none exists yet), stamped with ``run_id`` and ``now``."""
        raise NotImplementedError

    def _update(self, ex: Executor, target: Target, frame: pd.DataFrame, *, assign: bool) -> None:
        """Set the properties of ``frame`` on stored rows: a missing value keeps the stored one,
        or with ``assign`` every value, null included, is written (restoring before-images)."""
        raise NotImplementedError

    def _user_read(self, query: str, params: Mapping[str, Any]) -> pd.DataFrame:
        """A person's query, one statement, read-only by the database's means, under the limits."""
        raise NotImplementedError

    def _user_statement(self, ex: Executor, query: str, params: Mapping[str, Any]) -> pd.DataFrame:
        """A person's writing statement, one, inside the current write transaction, under the limits."""
        raise NotImplementedError

    def _writer_gone(self, run_id: str, host: Any, pid: Any) -> bool:
        """Whether the process that was writing a still-running run is gone (see graph.runs)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        """``with open_store(cfg) as store:`` closes the store when the block ends, raising or not."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _declare_types(self, ex: Executor, relations: Sequence[RelType]) -> None:
        """Create the declared types in the database, inside the write transaction (if it can)."""

    def _index_types(self, relations: Sequence[RelType]) -> None:
        """Schema work for declared types that must run before the write transaction (if any)."""

    def _undeclare_pair(self, ex: Executor, rel: str, head: str, tail: str, *, last: bool) -> None:
        """Drop one endpoint pair of a declared type (``last``: the type's only one) that no edge uses."""

    # ---- the store's schema ------------------------------------------------------------------
    @property
    def schema(self) -> Schema:
        """This store's schema: the MoKG's own plus the relation types declared in the store
        (read once; refreshed when this object declares or deletes types, or :meth:`refresh_schema`)."""
        if self._schema is None:
            cols = ", ".join(f"n.{p.name} AS {p.name}" for p in SCHEMA.label(DECLARED).props)
            self._schema = extended_schema(self._read(self._q("fetch_nodes", label=DECLARED, columns=cols)))
        return self._schema

    def refresh_schema(self) -> Schema:
        """Read the declared types again (another process may have declared some since)."""
        self._schema = None
        return self.schema

    def _schema_for(self, rel_types: Iterable[str]) -> Schema:
        """The schema, read again if it does not know one of ``rel_types`` (declared elsewhere)."""
        schema = self.schema
        if any(isinstance(r, str) and r not in schema.rel_types for r in rel_types):
            schema = self.refresh_schema()
        return schema

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

    @staticmethod
    def _assign_clause(var: str, columns: Sequence[str], skip: frozenset[str], source: str = "r.") -> str:
        """``var.col = <source>col``: every value is written, null included."""
        parts = [f"{var}.{c} = {source}{c}" for c in columns if c not in skip]
        return ", ".join(parts) or f"{var}.id = {var}.id"

    def _known_ids(self, label: str, ids: Sequence[str]) -> set[str]:
        lab = self.schema.label(label).name
        if len(ids) > KEYED_LOOKUP_MAX:
            found = self._read(self._q("all_ids", label=lab))
        else:
            found = self._read(self._q("existing_ids", label=lab), {"ids": list(ids)})
        return set(found["id"]) if len(found) else set()

    # ---- runs and versions -------------------------------------------------------------------
    def _new_run(self, ex: Executor, kind: str, note: str, status: str, source: str | None = None) -> str:
        """A Run node (inside the caller's transaction): the next sequence number, this writer."""
        seq_df = ex(self._q("max_run_seq"), {})
        last = seq_df["seq"].iloc[0] if len(seq_df) else None
        seq = 1 if last is None or pd.isna(last) else int(last) + 1
        run_id = f"{kind}-{utcnow():%Y%m%dT%H%M%S}-{seq}"
        params = {
            "id": run_id,
            "seq": seq,
            "kind": kind,
            "status": status,
            "note": note,
            "source": source or kind,
            "now": utcnow(),
            **writer(),
        }
        ex(self._q("upsert_run"), params)
        self._live_runs.add(run_id)
        return run_id

    def start_run(self, kind: str, note: str = "", source: str | None = None) -> str:
        """A new run, marked running. Says so (one log line) if earlier runs were interrupted."""
        warn_interrupted(self.interrupted_runs())
        return self._in_write_tx(lambda ex: self._new_run(ex, kind, note, "running", source))

    def finish_run(self, run_id: str, *, ok: bool = True) -> None:
        params = {"id": run_id, "status": "done" if ok else "failed", "now": utcnow()}
        self._in_write_tx(lambda ex: ex(self._q("finish_run"), params))
        self._live_runs.discard(run_id)

    @contextmanager
    def run_context(self, kind: str, note: str = "") -> Iterator[str]:
        """A run that is marked done when the block ends and failed if it raises."""
        run_id = self.start_run(kind, note)
        try:
            yield run_id
        except BaseException:
            with suppress(MokgError):  # the store may be unwritable (disk full): keep the first error
                self.finish_run(run_id, ok=False)
            raise
        self.finish_run(run_id, ok=True)

    def runs(self) -> pd.DataFrame:
        """Every run with its status; a ``running`` run whose writer is gone reads ``interrupted``."""
        df = self._read(self._q("list_runs"))
        if not len(df):
            return df.drop(columns=["host", "pid"], errors="ignore")
        gone = [
            status == "running" and self._writer_gone(str(i), h, p)
            for i, status, h, p in zip(df["id"], df["status"], df["host"], df["pid"], strict=True)
        ]
        df.loc[gone, "status"] = "interrupted"
        return df.drop(columns=["host", "pid"])

    def interrupted_runs(self) -> list[str]:
        runs = self.runs()
        return [str(i) for i in runs[runs["status"] == "interrupted"]["id"]] if len(runs) else []

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
        return GraphVersion(self.backend, self.schema.version, seq, run_id)

    # ---- writes ----------------------------------------------------------------------------
    def upsert_nodes(self, label: str, rows: Sequence[Mapping[str, Any]], *, run_id: str) -> TableReport:
        """MERGE nodes on their key; properties given are updated, others kept."""
        checked = validate_node_rows(label, rows, self.schema)
        table = rows_table(checked, self.schema.label(label).props)
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
        schema = self._schema_for([rel_type])
        h, t = schema.endpoints(rel_type, head, tail)
        checked = validate_edge_rows(rel_type, rows, schema)
        table = rows_table(checked, (*schema.rel(rel_type).props, *HEAD_TAIL))
        return self._load(run_id, {}, {(h, rel_type, t): table}).edges[edge_key_name((h, rel_type, t))]

    def bulk_load(
        self,
        *,
        run_id: str,
        nodes: Mapping[str, pd.DataFrame] | None = None,
        edges: Mapping[str, pd.DataFrame] | Mapping[EdgeKey, pd.DataFrame] | None = None,
        progress: Callable[[str, int], None] | None = None,
        keep: Collection[str | EdgeKey] = (),
        relations: Sequence[RelType] = (),
    ) -> LoadReport:
        """Load whole frames at once (the fast path); validated first, then one transaction.

        ``keep`` names tables (labels, relation types or edge keys, as in ``nodes``/``edges``)
        whose stored values are never replaced: missing rows are created and missing properties
        filled, and rows whose stored values differ are counted in ``TableReport.kept``.
        ``relations`` are external relation types to declare (:meth:`Schema.extend`) in the same
        transaction, so ``edges`` may use them."""
        specs = [s if isinstance(s, str) else s[1] for s in (edges or {})]
        current = self._schema_for(specs)
        schema = current.extend(relations)
        node_tables: dict[str, pa.Table] = {}
        for label, frame in (nodes or {}).items():
            props = schema.label(label).props
            allowed = [p for p in props if p.name not in NODE_SYSTEM_PROPS]
            node_tables[label] = validate_frame(f"{label} nodes", frame, allowed, [KEY])
        edge_tables: dict[EdgeKey, pa.Table] = {}
        kept: set[Target] = {k for k in keep if isinstance(k, str) and k in node_tables}
        for spec, frame in (edges or {}).items():
            key = self._edge_key(spec, schema)
            rel_props = [p for p in schema.rel(key[1]).props if p.name not in EDGE_SYSTEM_PROPS]
            table = validate_frame(edge_key_name(key), frame, [*rel_props, *HEAD_TAIL], ["head", "tail"])
            edge_tables[key] = with_confidence(edge_key_name(key), table)
            if spec in keep:
                kept.add(key)
        if relations:
            rows = declaration_frame(relations).drop_duplicates(KEY)
            allowed = [p for p in SCHEMA.label(DECLARED).props if p.name not in NODE_SYSTEM_PROPS]
            node_tables[DECLARED] = validate_frame(f"{DECLARED} rows", rows, allowed, [KEY])
            kept.add(DECLARED)  # a declaration, once made, is never rewritten by another
        names = dict.fromkeys(r.name for r in relations)
        declare = [schema.rel(n) for n in names if current.rel_types.get(n) != schema.rel(n)]  # new ones
        return self._load(run_id, node_tables, edge_tables, progress, kept, schema=schema, declare=declare)

    def remove_edges(self, key: EdgeKey, pairs: Sequence[tuple[str, str]], *, run_id: str) -> int:
        """Delete the edges of ``key`` between ``pairs`` (head, tail) in one transaction of the run,
        their whole rows kept as before-images, so ``delete_run`` puts them back (graph.removal);
        how many were removed (a pair with no edge is skipped)."""
        self._require_run(run_id)
        edge = self._edge_key(key, self._schema_for([key[1]]))

        def work(ex: Executor) -> int:
            ex(self._q("claim_run"), {"id": run_id, **writer()})
            self._live_runs.add(run_id)
            return remove(self, ex, edge, pairs, run_id, utcnow())

        return self._in_write_tx(work)

    def declare_relations(self, relations: Sequence[RelType], *, run_id: str) -> LoadReport:
        """Declare external relation types (:func:`graph.schema.external_relation`) in the store,
        in one transaction of the run; declaring a type again is a no-op, a new endpoint pair is
        added. ``delete_run`` of the run removes the declarations no other run's edges use."""
        return self.bulk_load(run_id=run_id, relations=relations)

    def _edge_key(self, spec: str | EdgeKey, schema: Schema | None = None) -> EdgeKey:
        schema = schema or self.schema
        if isinstance(spec, str):
            h, t = schema.endpoints(spec)
            return (h, spec, t)
        h, t = schema.endpoints(spec[1], spec[0], spec[2])
        return (h, spec[1], t)

    def _load(
        self,
        run_id: str,
        nodes: dict[str, pa.Table],
        edges: dict[EdgeKey, pa.Table],
        progress: Callable[[str, int], None] | None = None,
        keep: Collection[Target] = (),
        *,
        schema: Schema | None = None,
        declare: Sequence[RelType] = (),
    ) -> LoadReport:
        """Write the validated tables in one transaction; ``declare``: the external types the
        ``schema`` adds to this store's (created first, in the same transaction where the
        database allows it)."""
        self._require_run(run_id)
        for key, table in edges.items():
            check_endpoints(self, key, table, nodes)
        now = utcnow()
        report = LoadReport(run_id)
        tables: list[tuple[Target, pa.Table]] = [*nodes.items(), *edges.items()]

        def work(ex: Executor) -> None:
            ex(self._q("claim_run"), {"id": run_id, **writer()})
            self._live_runs.add(run_id)
            self._declare_types(ex, declare)
            for target, table in tables:
                done = write_table(self, ex, target, table, run_id, now, keep=target in keep)
                name = target if isinstance(target, str) else edge_key_name(target)
                (report.nodes if isinstance(target, str) else report.edges)[name] = done
                if progress:
                    progress(name, table.num_rows)

        if declare:
            self._index_types(declare)
        self._schema = schema or self._schema
        try:
            self._in_write_tx(work)
        except BaseException:
            self._schema = None  # read it again: what the failed transaction declared is not there
            raise
        return report

    # ---- reads -----------------------------------------------------------------------------
    def run(
        self, query: str, params: Mapping[str, Any] | None = None, *, read_only: bool = True
    ) -> pd.DataFrame:
        """Run a named query from ``queries/library`` or Cypher text, one statement, under the
        configured limits. Read-only (enforced by the database) unless asked; a write belongs to a
        new run of kind ``cypher`` (see :meth:`_adhoc_write`)."""
        from queries.library import is_query_name, load_library

        if is_query_name(query):
            named = load_library().get(query)
            given = params or {}
            types = [str(given[p.name]) for p in named.params if p.type == "rel_type" and p.name in given]
            text, bound = named.bind(self.dialect, given, self._schema_for(types))
            if named.writes and read_only:
                raise QueryError(f"query {query!r} writes; pass read_only=False (CLI: --write)")
            return self._execute(text, bound, read_only=read_only, note=f"named query {query}")
        cfg = self.config
        check_query_text(query, self.dialect, max_chars=cfg.max_query_chars, max_depth=cfg.max_query_depth)
        return self._execute(query, dict(params or {}), read_only=read_only, note=query)

    def _execute(self, query: str, params: dict[str, Any], *, read_only: bool, note: str) -> pd.DataFrame:
        if read_only:
            return self._user_read(query, params)
        return self._adhoc_write(query, params, note)

    def _adhoc_write(self, query: str, params: dict[str, Any], note: str) -> pd.DataFrame:
        """The statement, then in the same transaction a finished run of kind ``cypher`` (so the
        graph version moves) that stamps every node and edge the statement created."""

        def work(ex: Executor) -> pd.DataFrame:
            df = self._user_statement(ex, query, params)
            run_id = self._new_run(ex, ADHOC_KIND, adhoc_note(note), "done")
            self._stamp(ex, run_id)
            self._live_runs.discard(run_id)
            return df

        try:
            return self._in_write_tx(work, timeout_s=self.config.query_timeout_s)
        finally:
            self._schema = None  # the statement may have written declarations

    def _stamp(self, ex: Executor, run_id: str) -> None:
        """``run_id``, ``source`` and ``created_at`` on every data node and edge that lacks a run."""
        p = {"run_id": run_id, "now": utcnow()}
        for label in self.schema.data_labels():
            ex(self._q("stamp_nodes", label=label), p)
        for rel in self.schema.rel_types.values():
            for h, t in rel.endpoints:
                ex(self._q("stamp_edges", head=h, rel=rel.name, tail=t), p)

    def _node_columns(self, label: str) -> str:
        return ", ".join(f"n.{p.name} AS {p.name}" for p in self.schema.label(label).props)

    def _edge_columns(self, rel_type: str) -> str:
        return ", ".join(f"e.{p.name} AS {p.name}" for p in self.schema.rel(rel_type).props)

    def node_table(self, label: str, columns: Sequence[str] = ()) -> pd.DataFrame:
        """All nodes of ``label`` as a frame: ``id`` plus the named properties (validated)."""
        lab = self.schema.label(label)
        names = [KEY, *(lab.prop(c).name for c in columns if c != KEY)]
        fields = ", ".join(f"n.{c} AS {c}" for c in names)
        return with_columns(self._read(self._q("fetch_nodes", label=lab.name, columns=fields)), names)

    def edge_table(self, key: str | EdgeKey, columns: Sequence[str] = ()) -> pd.DataFrame:
        """All edges of one (head, type, tail) as a frame: ``head``, ``tail`` plus the named properties."""
        schema = self._schema_for([key if isinstance(key, str) else key[1]])
        h, r, t = self._edge_key(key, schema)
        rel = schema.rel(r)
        names = [rel.prop(c).name for c in columns]
        fields = ", ".join(f"e.{c} AS {c}" for c in names) or "e.confidence AS confidence"
        df = self._read(self._q("fetch_edges", head=h, rel=r, tail=t, columns=fields))
        return with_columns(df, ["head", "tail", *names])

    def subgraph(
        self,
        labels: Sequence[str] | None = None,
        rel_types: Sequence[str] | None = None,
        seeds: Mapping[str, Sequence[str]] | None = None,
        hops: int = 1,
    ) -> Subgraph:
        """Nodes of ``labels`` and edges of ``rel_types`` among them (all MoKG ones by default);
        with ``seeds`` ({label: [ids]}), only the ``hops``-hop neighbourhood of those seeds
        (:mod:`graph.reads`)."""
        from graph import reads

        return reads.subgraph(self, labels, rel_types, seeds, hops)

    def stats(self) -> dict[str, Any]:
        """Node counts per label, edge counts per (head, type, tail), runs, the graph version."""
        from graph import reads

        return reads.stats(self)

    def delete_run(self, run_id: str) -> dict[str, int]:
        """Undo a run in one transaction: put back the values it changed on other runs' rows
        (where they are still what it wrote; otherwise keep them and count a conflict) and the
        edges it removed, remove the edges it created, then its nodes that no other edge still
        uses, then the relation types it declared that no other run's edges use; every table's
        content hash is forgotten (:mod:`graph.undo`)."""
        from graph import undo

        return undo.delete_run(self, run_id)
