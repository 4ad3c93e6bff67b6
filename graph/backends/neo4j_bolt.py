"""The production backend: Neo4j 5 over Bolt with the official ``neo4j`` driver.

Managed transactions (``execute_write`` / ``execute_read``, which retry transient errors; our
units of work are idempotent MERGEs, so a retry is safe), ``UNWIND $rows`` batches inside one
transaction per load, a uniqueness constraint on ``id`` for every label and ``run_id`` indexes,
created by :meth:`Neo4jStore.init_schema` (``mokg init``).

A person's query runs in a READ transaction (Neo4j refuses writes in it) with the configured
timeout as the transaction's timeout, streaming at most ``max_rows`` records; a read whose summary
reports any update, or a query type other than read, is rolled back and refused (for servers that
do not enforce the access mode).

The same code runs against ArcadeDB's Bolt plugin in the test suite; ArcadeDB lacks Neo4j's
vector/full-text index DDL and ``db.index.*`` procedures, which mokg does not use. It ignores the
access mode (the summary check above still rolls a write back, but it applies schema changes
outside the transaction) and transaction timeouts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa

from graph.base import READ_ONLY_REFUSAL, BaseStore, Executor
from graph.changes import Target, key_columns
from graph.errors import InputError, MokgError, QueryError, StoreError, StoreUnavailable, one_line
from graph.runs import pid_alive
from graph.schema import SCHEMA, RelType
from graph.store import StoreConfig
from graph.tables import typed_table, with_columns

T = TypeVar("T")


def _native(value: Any) -> Any:
    """Driver values as plain Python: temporal types to naive-UTC datetimes, graph types to dicts."""
    from neo4j.graph import Node, Path, Relationship

    if hasattr(value, "to_native"):
        value = value.to_native()
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, Node):
        return {"_labels": sorted(value.labels), **{k: _native(v) for k, v in value.items()}}
    if isinstance(value, Relationship):
        return {"_type": value.type, **{k: _native(v) for k, v in value.items()}}
    if isinstance(value, Path):
        return [_native(n) for n in value.nodes]
    if isinstance(value, list):
        return [_native(v) for v in value]
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    return value


def _frame(result: Any) -> pd.DataFrame:
    keys = list(result.keys())
    rows = [[_native(v) for v in record.values()] for record in result]
    return pd.DataFrame(rows, columns=keys)


class Neo4jStore(BaseStore):
    backend = "neo4j"
    dialect = "neo4j"

    def __init__(self, config: StoreConfig, create: bool = False) -> None:
        super().__init__(config)
        import neo4j
        from neo4j.exceptions import AuthError, ConfigurationError, ServiceUnavailable

        uri = config.neo4j_uri
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri,
                auth=(config.neo4j_user, config.neo4j_password),
                connection_timeout=config.connect_timeout_s,
                max_transaction_retry_time=15.0,
            )
            self._driver.verify_connectivity()
        except ConfigurationError as exc:
            raise StoreError(
                f"MOKG_NEO4J_URI {uri!r} is not a URI the driver can use ({str(exc).split('. ')[0]}); "
                "set it like bolt://localhost:7687 or neo4j://host:7687"
            ) from None
        except AuthError:
            raise StoreUnavailable(
                f"Neo4j at {uri} refused the credentials of user {config.neo4j_user!r}: "
                "set MOKG_NEO4J_USER and MOKG_NEO4J_PASSWORD"
            ) from None
        except (ServiceUnavailable, OSError, ValueError) as exc:
            raise StoreUnavailable(
                f"cannot reach Neo4j at {uri} ({' '.join(str(exc).split())}). Start it with "
                "`docker compose -f docker/compose.yml up -d neo4j`, or set MOKG_NEO4J_URI to a "
                "running server (MOKG_STORE=embedded uses the built-in store instead)"
            ) from None
        if create:
            self.init_schema()

    def _session(self, read: bool = False) -> Any:
        import neo4j

        mode = neo4j.READ_ACCESS if read else neo4j.WRITE_ACCESS
        return self._driver.session(database=self.config.neo4j_database, default_access_mode=mode)

    def _translate(self, exc: Exception) -> Exception:
        from neo4j.exceptions import ConstraintError, Neo4jError, ServiceUnavailable

        if isinstance(exc, MokgError):
            return exc
        if isinstance(exc, ServiceUnavailable):
            return StoreUnavailable(
                f"lost the connection to Neo4j at {self.config.neo4j_uri}: {one_line(exc)}"
            )
        if isinstance(exc, ConstraintError):
            return InputError(f"Neo4j refused the write (nothing was written): {one_line(exc.message)}")
        if isinstance(exc, Neo4jError):
            code = exc.code or ""
            if "AccessMode" in code:
                return QueryError(READ_ONLY_REFUSAL)
            if "TransactionTimedOut" in code:
                return QueryError(self._timeout_message())
            return QueryError(f"Neo4j rejected the query ({code}): {one_line(exc.message)}")
        return exc

    def _timeout_message(self) -> str:
        return (
            f"the query ran past the timeout of {self.config.query_timeout_s:g} s "
            "(query_timeout_s; MOKG_QUERY_TIMEOUT or --timeout): narrow it, add a LIMIT, or raise it"
        )

    # ---- schema ----------------------------------------------------------------------------
    def init_schema(self) -> None:
        """Uniqueness constraints on ``id`` per label and ``run_id`` indexes (idempotent), those of
        the relation types declared in the store included."""
        statements = []
        for label in SCHEMA.labels:
            low = label.lower()
            statements.append(self._q("create_key_constraint", index=f"mokg_{low}_id", label=label))
            statements.append(self._q("create_node_run_index", index=f"mokg_{low}_run", label=label))
        self._run_ddl(statements)
        self._index_types([*SCHEMA.rel_types.values(), *self.refresh_schema().external_relations()])

    def _index_types(self, relations: Sequence[RelType]) -> None:
        """A ``run_id`` index per relation type: on Neo4j the type exists once an edge uses it, and
        schema changes cannot share a transaction with writes, so this runs before the load's."""
        self._run_ddl(
            [
                self._q("create_rel_run_index", index=f"mokg_{r.name.lower()}_run", rel=r.name)
                for r in relations
            ]
        )

    def _run_ddl(self, statements: list[str]) -> None:
        with self._session() as session:
            for stmt in statements:
                try:
                    session.run(stmt).consume()
                except Exception as exc:
                    raise self._translate(exc) from None

    # ---- primitives ------------------------------------------------------------------------
    def _read(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        try:
            with self._session(read=True) as session:
                df: pd.DataFrame = session.execute_read(lambda tx: _frame(tx.run(query, params or {})))
                return df
        except Exception as exc:
            raise self._translate(exc) from None

    def _in_write_tx(self, work: Callable[[Executor], T], timeout_s: float = 0.0) -> T:
        import neo4j

        @neo4j.unit_of_work(timeout=timeout_s or None)
        def unit(tx: Any) -> T:
            return work(lambda q, p: _frame(tx.run(q, dict(p))))

        try:
            with self._session() as session:
                result: T = session.execute_write(unit)
                return result
        except Exception as exc:
            raise self._translate(exc) from None

    def _rows(self, ex: Executor, query: str, frame: pd.DataFrame | pa.Table, **params: Any) -> pd.DataFrame:
        """``query`` over the rows of ``frame`` in UNWIND batches; the results concatenated."""
        rows = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        records = rows.to_pylist()
        size = self.config.batch_size or 10_000
        parts = []
        for start in range(0, len(records), size):
            parts.append(ex(query, {**params, "rows": records[start : start + size]}))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def _stored(self, ex: Executor, target: Target, keys: pd.DataFrame) -> pd.DataFrame:
        if isinstance(target, str):
            lab = self.schema.label(target)
            q = self._q("stored_nodes", label=lab.name, columns=self._node_columns(lab.name))
            return with_columns(self._rows(ex, q, keys), [p.name for p in lab.props])
        h, r, t = target
        q = self._q("stored_edges", head=h, rel=r, tail=t, columns=self._edge_columns(r))
        props = self.schema.rel(r).props
        return with_columns(self._rows(ex, q, keys), ["head", "tail", *(p.name for p in props)])

    def _insert(self, ex: Executor, target: Target, table: pa.Table, run_id: str, now: datetime) -> None:
        skip = frozenset(key_columns(target))
        if isinstance(target, str):
            clause = self._set_clause("n", table.column_names, skip)
            query = self._q("upsert_nodes", label=target, set_clause=clause)
        else:
            clause = self._set_clause("e", table.column_names, skip)
            query = self._q("upsert_edges", head=target[0], rel=target[1], tail=target[2], set_clause=clause)
        rows = table.to_pylist()
        size = self.config.batch_size or 10_000
        for start in range(0, len(rows), size):
            self._write_batch(ex, query, rows[start : start + size], {"run_id": run_id, "now": now})

    def _update(self, ex: Executor, target: Target, frame: pd.DataFrame, *, assign: bool) -> None:
        skip = frozenset(key_columns(target))
        var = "n" if isinstance(target, str) else "e"
        clause = (self._assign_clause if assign else self._set_clause)(var, list(frame.columns), skip)
        if isinstance(target, str):
            query = self._q("update_nodes", label=target, set_clause=clause)
        else:
            query = self._q("update_edges", head=target[0], rel=target[1], tail=target[2], set_clause=clause)
        rows = typed_table(frame, target, self.schema).to_pylist()
        size = self.config.batch_size or 10_000
        for start in range(0, len(rows), size):
            self._write_batch(ex, query, rows[start : start + size], {})

    # ---- a person's queries ----------------------------------------------------------------
    def _user_read(self, query: str, params: Mapping[str, Any]) -> pd.DataFrame:
        import neo4j

        @neo4j.unit_of_work(timeout=self.config.query_timeout_s or None)
        def unit(tx: Any) -> pd.DataFrame:
            result = tx.run(query, dict(params))
            df = self._capped(result)
            summary = result.consume()
            counters = summary.counters
            if summary.query_type != "r" or counters.contains_updates or counters.contains_system_updates:
                raise QueryError(READ_ONLY_REFUSAL)  # raised inside: the transaction is rolled back
            return df

        try:
            with self._session(read=True) as session:
                df: pd.DataFrame = session.execute_read(unit)
                return df
        except Exception as exc:
            raise self._translate(exc) from None

    def _user_statement(self, ex: Executor, query: str, params: Mapping[str, Any]) -> pd.DataFrame:
        df = ex(query, params)
        if self.config.max_rows and len(df) > self.config.max_rows:
            raise QueryError(self._cap_message(len(df)))
        return df

    def _capped(self, result: Any) -> pd.DataFrame:
        keys, cap = list(result.keys()), self.config.max_rows
        rows: list[list[Any]] = []
        for record in result:
            if cap and len(rows) >= cap:
                raise QueryError(self._cap_message(cap + 1, more=True))
            rows.append([_native(v) for v in record.values()])
        return pd.DataFrame(rows, columns=keys)

    def _cap_message(self, rows: int, more: bool = False) -> str:
        count = f"more than {rows - 1:,}" if more else f"{rows:,}"
        return (
            f"the query returned {count} rows, over the limit of {self.config.max_rows:,} (max_rows; "
            "MOKG_MAX_ROWS or --max-rows): add a LIMIT or aggregate"
        )

    def _writer_gone(self, run_id: str, host: Any, pid: Any) -> bool:
        """Known only for runs written on this machine: their process has ended."""
        if host != socket.gethostname() or pid is None or pd.isna(pid):
            return False
        if int(pid) == os.getpid():
            return run_id not in self._live_runs
        return not pid_alive(int(pid))

    def close(self) -> None:
        self._driver.close()
