"""The production backend: Neo4j 5 over Bolt with the official ``neo4j`` driver.

Managed transactions (``execute_write`` / ``execute_read``, which retry transient errors; our
units of work are idempotent MERGEs, so a retry is safe), ``UNWIND $rows`` batches inside one
transaction per load, a uniqueness constraint on ``id`` for every label and ``run_id`` indexes,
created by :meth:`Neo4jStore.init_schema` (``mokg init``).

The same code runs against ArcadeDB's Bolt plugin in the test suite; ArcadeDB lacks Neo4j's
vector/full-text index DDL and ``db.index.*`` procedures, which mokg does not use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa

from graph.base import BaseStore, Executor
from graph.errors import InputError, QueryError, StoreError, StoreUnavailable
from graph.schema import KEY, SCHEMA
from graph.store import StoreConfig, TableReport
from graph.subgraph import EdgeKey

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

        if isinstance(exc, ServiceUnavailable):
            return StoreUnavailable(f"lost the connection to Neo4j at {self.config.neo4j_uri}: {exc}")
        if isinstance(exc, ConstraintError):
            return InputError(f"Neo4j refused the write (nothing was written): {exc.message}")
        if isinstance(exc, Neo4jError):
            return QueryError(f"Neo4j rejected the query ({exc.code}): {exc.message}")
        return exc

    # ---- schema ----------------------------------------------------------------------------
    def init_schema(self) -> None:
        """Uniqueness constraints on ``id`` per label and ``run_id`` indexes (idempotent)."""
        statements = []
        for label in SCHEMA.labels:
            low = label.lower()
            statements.append(self._q("create_key_constraint", index=f"mokg_{low}_id", label=label))
            statements.append(self._q("create_node_run_index", index=f"mokg_{low}_run", label=label))
        for rel in SCHEMA.rel_types:
            statements.append(self._q("create_rel_run_index", index=f"mokg_{rel.lower()}_run", rel=rel))
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

    def _in_write_tx(self, work: Callable[[Executor], T]) -> T:
        def unit(tx: Any) -> T:
            return work(lambda q, p: _frame(tx.run(q, dict(p))))

        try:
            with self._session() as session:
                result: T = session.execute_write(unit)
                return result
        except Exception as exc:
            raise self._translate(exc) from None

    def _write_rows(self, ex: Executor, query: str, table: pa.Table, run_id: str, now: datetime) -> None:
        rows = table.to_pylist()
        size = self.config.batch_size or 10_000
        for start in range(0, len(rows), size):
            self._write_batch(ex, query, rows[start : start + size], {"run_id": run_id, "now": now})

    def _write_nodes(
        self, ex: Executor, label: str, table: pa.Table, run_id: str, now: datetime
    ) -> TableReport:
        lab = SCHEMA.label(label).name
        set_clause = self._set_clause("n", table.column_names, frozenset({KEY}))
        self._write_rows(ex, self._q("upsert_nodes", label=lab, set_clause=set_clause), table, run_id, now)
        return TableReport(table.num_rows)

    def _write_edges(
        self, ex: Executor, key: EdgeKey, table: pa.Table, run_id: str, now: datetime
    ) -> TableReport:
        h, r, t = key
        set_clause = self._set_clause("e", table.column_names, frozenset({"head", "tail"}))
        q = self._q("upsert_edges", head=h, rel=r, tail=t, set_clause=set_clause)
        self._write_rows(ex, q, table, run_id, now)
        return TableReport(table.num_rows)

    def close(self) -> None:
        self._driver.close()
