"""Fuzzing `mokg cypher` without --write: whatever the text, no write and no crash.

Generated queries mix reads, writes, DDL, transaction control, several statements, file-reading
table functions, COPY/LOAD/EXPORT, settings, deep nesting and long expressions. Each runs through
``store.run(query, read_only=True)``, which may only return a frame or raise a mokg error; at the
end the graph version, a canonical dump (system tables included), the table comments and the
scratch directory are what they were. Shapes that crashed the process (a segfault would take
pytest with it) run in a subprocess instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.errors import MokgError
from graph.store import GraphStore, StoreConfig, open_store
from tests.support.dump import canonical_dump
from tests.test_store_contract import seed

ROOT = Path(__file__).resolve().parents[1]
STATEMENTS = [
    "MATCH (n) RETURN n.id",
    "MATCH (u:User)-[e]->(x) RETURN u.id, e.confidence, x.id",
    "RETURN 1",
    "CREATE (:User {id: 'fuzz'})",
    "MERGE (:Intent {id: 'fuzz'})",
    "MATCH (u:User) SET u.name = 'fuzz'",
    "MATCH (u:User) REMOVE u.name",
    "MATCH (u:User) DETACH DELETE u",
    "UNWIND [1, 2] AS x CREATE (:Brand {id: toString(x)})",
    "COMMIT",
    "BEGIN TRANSACTION",
    "ROLLBACK",
    "CHECKPOINT",
    "COMMENT ON TABLE User IS 'fuzz'",
    "DROP TABLE Brand",
    "ALTER TABLE User ADD fuzz STRING",
    "CREATE NODE TABLE Fuzz(id STRING, PRIMARY KEY(id))",
    "CREATE INDEX fuzz FOR (n:User) ON (n.name)",
    "CALL show_tables() RETURN *",
    "CALL current_setting('timeout') RETURN *",
    "CALL timeout=0",
    "CALL threads=1",
    "CALL db.labels()",
    "CALL { MATCH (n:User) RETURN n } RETURN 1",
    "LOAD FROM '{tmp}/x.csv' RETURN *",
    "LOAD CSV FROM 'file://{tmp}/x.csv' AS r RETURN r",
    "COPY (MATCH (u:User) RETURN u.id) TO '{tmp}/out.csv'",
    "COPY User FROM '{tmp}/x.csv'",
    "EXPORT DATABASE '{tmp}/exported'",
    "IMPORT DATABASE '{tmp}/exported'",
    "ATTACH '{tmp}/other' AS o (dbtype lbug)",
    "INSTALL json",
    "LOAD EXTENSION json",
    "USE o",
    "CALL apoc.load.json('file://{tmp}/x.csv') YIELD value RETURN value",
]
SEPARATORS = [";", "; ", " ;\n", "\n;"]
NOISE = ["", "// note\n", "/* ; COMMIT; */ ", "  ", "\n", "RETURN 'a;b' AS s; "]


@st.composite
def statement(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        depth = draw(st.integers(1, 80))
        opener = draw(st.sampled_from(["(", "["]))
        closer = ")" if opener == "(" else "]"
        return "RETURN " + opener * depth + "1" + closer * depth
    if kind == 1:
        return "RETURN 1" + "+1" * draw(st.integers(1, 600))
    if kind == 2:
        return draw(st.text(max_size=60))
    return draw(st.sampled_from(STATEMENTS))


WRITES = [
    "COMMENT ON TABLE User IS 'fuzz'",
    "CREATE (:User {id: 'fuzz'})",
    "MATCH (u:User) SET u.name = 'fuzz'",
    "ALTER TABLE Item ADD fuzz INT64",
    "DROP TABLE Brand",
]


@st.composite
def escape(draw: st.DrawFn) -> str:
    """A read, then transaction control, then a write: how the reported escape was shaped."""
    control = draw(st.sampled_from(["COMMIT", "ROLLBACK", "COMMIT; BEGIN TRANSACTION", "CHECKPOINT"]))
    return f"RETURN 1; {control}; {draw(st.sampled_from(WRITES))}"


@st.composite
def query(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 2)) == 0:
        return draw(escape())
    parts = draw(st.lists(statement(), min_size=1, max_size=3))
    joined = parts[0]
    for part in parts[1:]:
        joined += draw(st.sampled_from(SEPARATORS)) + part
    return draw(st.sampled_from(NOISE)) + joined


def _schema_of(store: GraphStore) -> object:
    if store.dialect == "embedded":
        return store.run("CALL show_tables() RETURN *").to_dict("records")
    return sorted(store.run("CALL db.labels()").iloc[:, 0])


def test_a_read_only_call_never_writes_whatever_the_text(store: GraphStore, tmp_path: Path) -> None:
    seed(store)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "x.csv").write_text("id\nfuzz\n")
    before = (store.version(), canonical_dump(store), _schema_of(store))

    @settings(
        max_examples=120,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(query())
    def read_only(text: str) -> None:
        with contextlib.suppress(MokgError):
            store.run(text.replace("{tmp}", str(scratch)))

    read_only()
    assert (store.version(), canonical_dump(store), _schema_of(store)) == before
    assert sorted(p.name for p in scratch.iterdir()) == ["x.csv"]


CRASHERS = """
    import json, sys
    from graph.errors import MokgError
    from graph.store import StoreConfig, open_store
    store = open_store(StoreConfig(path=sys.argv[1]), create=True)
    shapes = {
        "read_csv": "CALL READ_CSV_SERIAL('/etc/passwd') RETURN *",
        "read_parquet": "CALL READ_PARQUET('/etc/passwd') RETURN *",
        "parens": "RETURN " + "(" * 3000 + "1" + ")" * 3000,
        "brackets": "RETURN " + "[" * 3000 + "1" + "]" * 3000,
        "terms": "RETURN 1" + "+1" * 20000,
        "huge": "RETURN '" + "x" * 1_000_000 + "'",
    }
    out = {}
    for name, text in shapes.items():
        try:
            store.run(text)
            out[name] = "ran"
        except MokgError as exc:
            out[name] = str(exc)
    print(json.dumps(out))
"""


@pytest.mark.slow
def test_shapes_that_crashed_the_process_get_one_line_errors(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MOKG_")}, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASHERS), str(tmp_path / "g")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, f"the process died (rc {r.returncode}): {r.stderr[-2000:]}"
    out = json.loads(r.stdout)
    assert "CALL READ_CSV_SERIAL" in out["read_csv"] and "CALL READ_PARQUET" in out["read_parquet"]
    assert "max_query_depth" in out["parens"] and "max_query_depth" in out["brackets"]
    assert "max_query_chars" in out["terms"] and "max_query_chars" in out["huge"]
    cli = subprocess.run(
        [sys.executable, "-m", "mokg", "--path", str(tmp_path / "g"), "cypher", CLI_CRASHER],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1, cli.stderr


CLI_CRASHER = "CALL READ_PARQUET('/etc/passwd') RETURN *"


def test_the_guards_leave_ordinary_reads_alone(tmp_path: Path) -> None:
    """The guards leave ordinary reads alone: named queries, parameters, literals with keywords."""
    with open_store(StoreConfig(path=tmp_path / "g"), create=True) as store:
        seed(store)
        assert store.run("MATCH (u:User) WHERE u.name = 'COPY; LOAD FROM x' RETURN u.id").empty
        assert store.run("MATCH (u:User {id: $id}) RETURN u.name AS n", {"id": "u1"})["n"][0] == "Ann"
        assert store.run("// CALL READ_CSV_SERIAL\nRETURN 1 AS one")["one"][0] == 1
        assert len(store.run("user_intents", {"user_id": "u1"})) == 1
