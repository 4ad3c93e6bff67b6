"""The embedded backend: LadybugDB (the maintained fork of Kùzu), a directory on disk.

Layout of a store directory: ``mokg.json`` (the marker: schema version, creation time) and
``graph.lbdb`` (the database). The MoKG schema becomes node tables (primary key ``id``) and
rel tables (one FROM/TO pair per declared endpoint pair).

Writes take the columnar fast path: inside one transaction, the incoming rows are compared with
what the store holds; new rows go in by ``COPY`` (LadybugDB's bulk loader), changed rows by
batched ``LOAD FROM … SET``, unchanged rows are skipped. Rows are de-duplicated before ``COPY``
because LadybugDB 0.22 crashes the process on a duplicate primary key in ``COPY``.

One process at a time: LadybugDB locks the database file. Another process gets a one-line error,
or with ``StoreConfig.wait_s`` (``--wait``, ``MOKG_WAIT``) retries until the deadline. A person's
query runs as one prepared statement (LadybugDB refuses to prepare several) in a ``READ ONLY``
transaction unless it may write, with the connection's query timeout and a row cap.

A commit whose post-commit checkpoint fails (a full disk) is reported by LadybugDB as "committed
and durable", but on reopening only its logged statements are there: the rows it bulk-loaded by
``COPY`` are gone. So the store reopens the database and checks what of the transaction is there
(its token, written by ``mark_commit``, and the rows it copied) to say truthfully what was kept.
Before-images are written by ``LOAD FROM … CREATE`` (logged), so they survive with the updates
they undo.
Never import ``kuzu`` in the same process (it segfaults next to ``ladybug``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graph.backends.lbdb import arrow_frame, columns_ddl, read_marker, unwound
from graph.base import KEYED_LOOKUP_MAX, READ_ONLY_REFUSAL, BaseStore, Executor
from graph.changes import Target, key_columns
from graph.errors import QueryError, StoreError, one_line
from graph.runs import log
from graph.schema import KEY, SCHEMA, Prop, RelType
from graph.store import LoadReport, StoreConfig
from graph.subgraph import EdgeKey
from graph.tables import typed_table
from graph.validate import ARROW_TYPES

T = TypeVar("T")
MARKER = "mokg.json"
LOGGED_INSERT_MAX = 1000  # new rows up to this many are CREATEd (logged), more are COPYed
MIGRATABLE = frozenset({"1", "2", "3", "4", "5", "6", "7"})  # versions an additive migration updates
DB_FILE = "graph.lbdb"
EMBEDDED_BATCH = 200_000  # rows per LOAD FROM update statement (each costs a fixed scan)
CHECKPOINT_FAILED = "post-commit checkpoint failed"
_HELD_BY = re.compile(r"Lock is held by PID (\d+)")


@dataclass
class TxLog:
    """What the current write transaction did: tables it copied rows into, rows it updated."""

    copies: list[tuple[Target, str, datetime, int]] = field(default_factory=list)
    updated: int = 0


class EmbeddedStore(BaseStore):
    backend = "embedded"
    dialect = "embedded"

    def __init__(self, config: StoreConfig, create: bool = False) -> None:
        super().__init__(config)
        self.path = Path(config.path)
        fresh = self._check_path(create)
        self._open_db()
        self._in_tx = False
        self._tx = TxLog()
        self._small_load = False
        if fresh:
            self.init_schema()
        elif self._stored_version() in MIGRATABLE:
            self._migrate()

    def _open_db(self) -> None:
        """Open the database, retrying while another process holds it, until ``wait_s`` is over."""
        import ladybug

        deadline = time.monotonic() + self.config.wait_s
        while True:
            try:
                self._db = ladybug.Database(str(self.path / DB_FILE))
                self._conn = ladybug.Connection(self._db)
                return
            except RuntimeError as exc:
                held = "lock" in str(exc).lower()
                if held and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise self._open_error(exc, held) from None

    def _open_error(self, exc: RuntimeError, held: bool) -> StoreError:
        if not held:
            return StoreError(f"cannot open the embedded store at {self.path}: {one_line(exc)}")
        pid = _HELD_BY.search(str(exc))
        who = f"another process (pid {pid.group(1)})" if pid else "another process"
        waited = f" after waiting {self.config.wait_s:g} s" if self.config.wait_s else ""
        return StoreError(
            f"the embedded store at {self.path} is in use by {who}{waited}: wait for it to finish, "
            "or queue for it with --wait SECONDS (MOKG_WAIT)"
        )

    def _check_path(self, create: bool) -> bool:
        """Return True if a new store must be initialised here."""
        marker = self.path / MARKER
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path} is a file, not a mokg store directory")
        if marker.exists():
            info = read_marker(marker)
            if info.get("schema_version") not in MIGRATABLE | {SCHEMA.version}:
                raise StoreError(
                    f"the store at {self.path} has schema v{info.get('schema_version')} but this "
                    f"mokg expects v{SCHEMA.version}: export it and re-create it with `mokg init`"
                )
            return False
        if self.path.exists() and any(self.path.iterdir()):
            raise StoreError(
                f"{self.path} is not a mokg store (it has no {MARKER}); point MOKG_PATH / --path "
                "at an empty or new directory and run `mokg init`"
            )
        if not create:
            raise StoreError(
                f"no mokg store at {self.path}; create one with `mokg init --path {self.path}` "
                "(or run `make demo`)"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        return True

    # ---- schema ----------------------------------------------------------------------------
    def _stored_version(self) -> str | None:
        info = read_marker(self.path / MARKER)
        version = info.get("schema_version")
        return str(version) if version is not None else None

    def _migrate(self) -> None:
        """Bring an older store up to this schema: new tables, then every missing column (additive)."""
        for lab in SCHEMA.labels.values():
            for prop in lab.props:
                if prop.name != KEY:
                    self._add_column(lab.name, prop)
        for rel in SCHEMA.rel_types.values():
            for prop in rel.props:
                self._add_column(rel.name, prop)
        self.init_schema()  # new tables; then the endpoint pairs an existing rel table lacks
        for rel in SCHEMA.rel_types.values():
            for head, tail in rel.endpoints:
                self._exec(self._q("add_rel_pair", rel=rel.name, head=head, tail=tail))

    def _add_column(self, table: str, prop: Prop) -> None:
        try:
            self._exec(self._q("add_column", table=table, column=prop.name, type=prop.type.value))
        except QueryError as exc:  # a table this schema adds: init_schema creates it whole
            if "does not exist" not in str(exc):
                raise

    def init_schema(self) -> None:
        """Create every node and rel table of the schema (idempotent), then the marker file."""
        for lab in SCHEMA.labels.values():
            cols = columns_ddl([p for p in lab.props if p.name != KEY])
            self._exec(self._q("create_node_table", label=lab.name, columns=f"id STRING, {cols}"))
        for rel in SCHEMA.rel_types.values():
            pairs = ", ".join(f"FROM {h} TO {t}" for h, t in rel.endpoints)
            self._exec(self._q("create_rel_table", rel=rel.name, pairs=pairs, columns=columns_ddl(rel.props)))
        self._write_marker()
        self._declare_types(self._exec, self.refresh_schema().external_relations())

    def _write_marker(self) -> None:
        """The marker: this schema version, when the store was created, and its migrations."""
        marker = self.path / MARKER
        info = read_marker(marker) if marker.exists() else {}
        now = datetime.now().isoformat(timespec="seconds")
        before = info.get("schema_version")
        history = list(info.get("migrations", []))
        if before is not None and before != SCHEMA.version:
            history.append({"from": before, "to": SCHEMA.version, "at": now})
        info = {
            "schema_version": SCHEMA.version,
            "backend": self.backend,
            "created_at": info.get("created_at", now),
            **({"migrations": history} if history else {}),
        }
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, marker)

    def _declare_types(self, ex: Executor, relations: Sequence[RelType]) -> None:
        """A rel table per declared type, and the endpoint pairs it lacks (DDL is transactional
        in LadybugDB: inside a write transaction it is rolled back with it)."""
        for rel in relations:
            pairs = ", ".join(f"FROM {h} TO {t}" for h, t in rel.endpoints)
            ex(self._q("create_rel_table", rel=rel.name, pairs=pairs, columns=columns_ddl(rel.props)), {})
            for head, tail in rel.endpoints:
                ex(self._q("add_rel_pair", rel=rel.name, head=head, tail=tail), {})

    def _undeclare_pair(self, ex: Executor, rel: str, head: str, tail: str, *, last: bool) -> None:
        if last:
            ex(self._q("drop_rel_table", rel=rel), {})
        else:
            ex(self._q("drop_rel_pair", rel=rel, head=head, tail=tail), {})

    # ---- primitives ------------------------------------------------------------------------
    def _exec(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        try:
            result = self._conn.execute(query, dict(params or {}))
        except RuntimeError as exc:
            raise QueryError(f"LadybugDB rejected the query: {one_line(exc)}") from None
        if isinstance(result, list):
            result = result[-1]
        return arrow_frame(result)

    def _read(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        if self._in_tx:
            return self._exec(query, params)
        self._exec("BEGIN TRANSACTION READ ONLY")
        try:
            df = self._exec(query, params)
        except BaseException:
            self._rollback()
            raise
        self._exec("COMMIT")
        return df

    def _rollback(self) -> None:
        # LadybugDB has already rolled back a transaction whose statement failed.
        with contextlib.suppress(RuntimeError):
            self._conn.execute("ROLLBACK")

    def _in_write_tx(self, work: Callable[[Executor], T], timeout_s: float = 0.0) -> T:
        """``timeout_s`` is not used here: a person's statement gets the connection's timeout."""
        if self._in_tx:
            return work(self._exec)
        self._exec("BEGIN TRANSACTION")
        self._in_tx, self._tx = True, TxLog()
        try:
            result = work(self._exec)
            token = uuid.uuid4().hex
            self._exec(self._q("mark_commit"), {"token": token})
            self._commit(token)
            return result
        except BaseException:
            self._rollback()
            raise
        finally:
            self._in_tx = False

    def _commit(self, token: str) -> None:
        try:
            self._conn.execute("COMMIT")
            return
        except RuntimeError as exc:
            if CHECKPOINT_FAILED not in str(exc):
                raise QueryError(f"LadybugDB could not commit: {one_line(exc)}") from None
            cause = one_line(str(exc).split("restart:")[-1])
        self._in_tx = False
        tx, token_kept = self._tx, self._reopened_token(cause) == token
        copied = sum(n for *_, n in tx.copies)
        lost = copied - self._rows_found(tx)
        if token_kept and not lost:
            log.warning(
                "the write was kept, but LadybugDB could not checkpoint it (%s): free disk space", cause
            )
            return
        what = (
            f"its {lost:,} new rows were lost but the {tx.updated:,} rows it updated were kept (deleting "
            "its run with `mokg runs delete RUN` undoes them)"
            if token_kept and tx.updated
            else "nothing of it was kept"
        )
        raise StoreError(
            f"the store could not write this transaction to disk ({cause}); {what} (mokg reopened the "
            "store to check): free disk space and run it again"
        )

    def _rows_found(self, tx: TxLog) -> int:
        """How many of the rows the transaction copied are in the store (created at its time)."""
        found = 0
        for target, run_id, now, _ in tx.copies:
            if isinstance(target, str):
                q = self._q("count_created_nodes", label=target)
            else:
                q = self._q("count_created_edges", head=target[0], rel=target[1], tail=target[2])
            found += int(self._read(q, {"run_id": run_id, "now": now})["c"].iloc[0])
        return found

    def _reopened_token(self, cause: str) -> str | None:
        """Close and reopen the database (what a restart recovers), then read the commit token."""
        with contextlib.suppress(RuntimeError):
            self._conn.close()
            self._db.close()
        try:
            self._open_db()
            df = self._read(self._q("commit_token"))
        except (StoreError, QueryError) as exc:
            raise StoreError(
                f"the store could not write this transaction to disk ({cause}) nor be reopened to "
                f"check what was kept ({exc}): free disk space and open it again"
            ) from None
        return str(df["token"].iloc[0]) if len(df) else None

    def _copy(self, query: str, frame: pa.Table) -> None:
        # LadybugDB's COPY FROM resolves the Python variable named in the query (`frame`).
        try:
            self._conn.execute(query)
        except RuntimeError as exc:
            raise QueryError(f"LadybugDB COPY failed: {one_line(exc)}") from None

    def _known_ids(self, label: str, ids: Sequence[str]) -> set[str]:
        lab = self.schema.label(label).name
        keys = pd.DataFrame({KEY: list(ids)})
        found = self._existing("all_ids", "existing_ids_keyed", {"label": lab}, keys)
        return set(found[KEY]) if len(found) else set()

    def _existing(self, full: str, keyed: str, slots: dict[str, str], keys: pd.DataFrame) -> pd.DataFrame:
        """Stored rows matching the incoming keys: a keyed join for small inputs, else a scan."""
        if len(keys) > KEYED_LOOKUP_MAX:
            return self._exec(self._q(full, **slots))
        frame = pa.Table.from_pandas(keys.add_prefix("c_"), preserve_index=False)
        query, given = unwound(self._q(keyed, **slots), frame, LOGGED_INSERT_MAX)
        try:  # LOAD FROM in the query resolves the Python variable `frame`
            result = self._conn.execute(query, given)
        except RuntimeError as exc:
            raise QueryError(f"LadybugDB rejected a lookup: {one_line(exc)}") from None
        return arrow_frame(result[-1] if isinstance(result, list) else result)

    def _stored(self, ex: Executor, target: Target, keys: pd.DataFrame) -> pd.DataFrame:
        if isinstance(target, str):
            slots = {"label": self.schema.label(target).name, "columns": self._node_columns(target)}
            return self._existing("fetch_nodes", "fetch_nodes_keyed", slots, keys)
        h, r, t = target
        slots = {"head": h, "rel": r, "tail": t, "columns": self._edge_columns(r)}
        return self._existing("fetch_edges", "fetch_edges_keyed", slots, keys)

    def _insert(self, ex: Executor, target: Target, table: pa.Table, run_id: str, now: datetime) -> None:
        """New rows: ``COPY`` in a bulk load, a logged ``CREATE`` in a small one (at most
        ``LOGGED_INSERT_MAX`` rows in all its tables: one transaction is all one or all the other, so
        a failed checkpoint loses all of its new rows or none). Each ``COPY`` keeps a node group's
        worth of memory (≈ 20 MB a call, ``python -m bench.memory`` measures it), so a writer making
        many small runs (a chat turn, a memory session) would otherwise grow without bound. The
        before-images (``Change``) are always logged: they must survive with the updates they undo."""
        if target == "Change" or self._small_load:
            self._create(ex, target, table, run_id, now)
            return
        self._tx.copies.append((target, run_id, now, table.num_rows))
        if isinstance(target, str):
            frame = self._full_table(table, self.schema.label(target).props, run_id, now)
            self._copy(self._q("copy_nodes", label=target), frame)
            return
        h, r, t = target
        body = self._full_table(table, self.schema.rel(r).props, run_id, now)
        ends = table.select(["head", "tail"]).rename_columns(["from", "to"])
        frame = pa.table([*ends.columns, *body.columns], names=["from", "to", *body.column_names])
        self._copy(self._q("copy_edges", rel=r, head=h, tail=t), frame)

    def _load(
        self, run_id: str, nodes: dict[str, pa.Table], edges: dict[EdgeKey, pa.Table], *args: Any, **kw: Any
    ) -> LoadReport:
        """The base's load, its inserts logged when the load is small (see :meth:`_insert`)."""
        self._small_load = sum(t.num_rows for t in (*nodes.values(), *edges.values())) <= LOGGED_INSERT_MAX
        try:
            return super()._load(run_id, nodes, edges, *args, **kw)
        finally:
            self._small_load = False

    def _create(self, ex: Executor, target: Target, table: pa.Table, run_id: str, now: datetime) -> None:
        if isinstance(target, str):
            frame = self._full_table(table, self.schema.label(target).props, run_id, now)
            props = ", ".join(f"{c}: {c}" for c in frame.column_names)
            self._write_batch(ex, self._q("create_nodes", label=target, properties=props), frame, {})
            return
        h, r, t = target
        body = self._full_table(table, self.schema.rel(r).props, run_id, now)
        ends = table.select(["head", "tail"]).rename_columns(["c_head", "c_tail"])
        frame = pa.table([*ends.columns, *body.columns], names=["c_head", "c_tail", *body.column_names])
        props = ", ".join(f"{c}: {c}" for c in body.column_names)
        self._write_batch(ex, self._q("create_edges", head=h, rel=r, tail=t, properties=props), frame, {})

    def _update(self, ex: Executor, target: Target, frame: pd.DataFrame, *, assign: bool) -> None:
        """Rows in batches through ``LOAD FROM`` (far faster here than ``UNWIND … MERGE``)."""
        keys = frozenset(key_columns(target))
        clause = (self._assign_clause if assign else self._set_clause)(
            "n" if isinstance(target, str) else "e", list(frame.columns), keys, source="c_"
        )
        if isinstance(target, str):
            query = self._q("update_nodes", label=target, set_clause=clause)
        else:
            query = self._q("update_edges", head=target[0], rel=target[1], tail=target[2], set_clause=clause)
        table = typed_table(frame, target, self.schema)
        table = table.rename_columns([f"c_{c}" for c in table.column_names])
        self._tx.updated += table.num_rows if target != "Change" else 0
        size = self.config.batch_size or EMBEDDED_BATCH
        for start in range(0, table.num_rows, size):
            self._write_batch(ex, query, table.slice(start, size), {})

    def _write_batch(self, ex: Executor, query: str, rows: Any, params: Mapping[str, Any]) -> None:
        frame = rows  # noqa: F841  (LOAD FROM in the query resolves the Python variable `frame`)
        query, given = unwound(query, rows, LOGGED_INSERT_MAX)
        try:
            self._conn.execute(query, {**params, **given})
        except RuntimeError as exc:
            raise QueryError(f"LadybugDB rejected an update batch: {one_line(exc)}") from None

    @staticmethod
    def _full_table(table: pa.Table, props: Sequence[Prop], run_id: str, now: datetime) -> pa.Table:
        """All columns of the table's schema, in declared order, with the store's own columns."""
        n = table.num_rows
        cols: list[pa.Array | pa.ChunkedArray] = []
        for p in props:
            if p.name == "run_id":
                cols.append(pa.array([run_id] * n, pa.string()))
            elif p.name == "created_at":
                cols.append(pa.array([now] * n, ARROW_TYPES[p.type]))
            elif p.name == "source" and p.name in table.column_names:
                cols.append(pc.fill_null(table.column(p.name), run_id))
            elif p.name == "source":
                cols.append(pa.array([run_id] * n, pa.string()))
            elif p.name in table.column_names:
                cols.append(table.column(p.name).cast(ARROW_TYPES[p.type]))
            else:
                cols.append(pa.nulls(n, ARROW_TYPES[p.type]))
        return pa.table(cols, names=[p.name for p in props])

    # ---- a person's queries ----------------------------------------------------------------
    def _user_read(self, query: str, params: Mapping[str, Any]) -> pd.DataFrame:
        self._exec("BEGIN TRANSACTION READ ONLY")
        try:
            df = self._user_statement(self._exec, query, params)
        except BaseException:
            self._rollback()
            raise
        self._exec("COMMIT")
        return df

    def _user_statement(self, ex: Executor, query: str, params: Mapping[str, Any]) -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            prepared = self._conn.prepare(query)
        if not prepared.is_success():
            raise self._user_error(prepared.get_error_message())
        self._conn.set_query_timeout(round(self.config.query_timeout_s * 1000))
        try:
            result = self._conn.execute(prepared, dict(params))
            assert not isinstance(result, list)  # a prepared statement is one statement
        except RuntimeError as exc:
            raise self._user_error(str(exc)) from None
        finally:
            self._conn.set_query_timeout(0)
        rows, cap = result.get_num_tuples(), self.config.max_rows
        if cap and rows > cap:
            raise QueryError(
                f"the query returned {rows:,} rows, over the limit of {cap:,} (max_rows; "
                "MOKG_MAX_ROWS or --max-rows): add a LIMIT or aggregate"
            )
        return arrow_frame(result)

    def _user_error(self, message: str) -> QueryError:
        if message.startswith("Interrupted"):
            return QueryError(
                f"the query ran past the timeout of {self.config.query_timeout_s:g} s "
                "(query_timeout_s; MOKG_QUERY_TIMEOUT or --timeout): narrow it, add a LIMIT, or raise it"
            )
        if "read-only transaction" in message:
            return QueryError(READ_ONLY_REFUSAL)
        if "multiple statements" in message:
            return QueryError("one statement per call: run each statement on its own")
        return QueryError(f"LadybugDB rejected the query: {one_line(message)}")

    def _writer_gone(self, run_id: str, host: Any, pid: Any) -> bool:
        """This process holds the store's exclusive lock: a run it is not writing has no writer."""
        return run_id not in self._live_runs

    def close(self) -> None:
        self._conn.close()
        self._db.close()
