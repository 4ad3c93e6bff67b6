"""The `mokg` command line, end to end in subprocesses (exit codes and messages as a user sees them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mining.teacher import NoiseConfig

ROOT = Path(__file__).resolve().parents[1]


def mokg(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MOKG_")}
    full_env.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "mokg", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where `mokg demo --sample` has run once (embedded store in ./mokg-data/graph)."""
    d = tmp_path_factory.mktemp("demo")
    result = mokg("demo", "--sample", cwd=d)
    assert result.returncode == 0, result.stderr
    return d


@pytest.mark.slow
def test_demo_builds_queries_and_exports(demo_dir: Path) -> None:
    out = demo_dir / "mokg-data" / "export"
    assert {p.name for p in out.iterdir()} >= {"graph.ttl", "graph.pt", "graph.json", "parquet"}
    manifest = json.loads((out / "parquet" / "manifest.json").read_text())
    assert manifest["graph_version"]["run_id"].startswith("demo-")
    stats = json.loads(mokg("stats", "--json", cwd=demo_dir).stdout)
    assert stats["total_nodes"] == 50 and stats["total_edges"] == 77


@pytest.mark.slow
def test_demo_twice_changes_nothing(demo_dir: Path) -> None:
    before = json.loads(mokg("stats", "--json", cwd=demo_dir).stdout)
    assert mokg("demo", "--sample", cwd=demo_dir).returncode == 0
    after = json.loads(mokg("stats", "--json", cwd=demo_dir).stdout)
    assert before["nodes"] | {"Run": 0} == after["nodes"] | {"Run": 0}
    assert before["edges"] == after["edges"]


@pytest.mark.slow
def test_world_demo_generates_ingests_and_exports(tmp_path: Path) -> None:
    r = mokg("demo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    stats = json.loads(mokg("stats", "--json", cwd=tmp_path).stdout)
    assert stats["nodes"]["User"] == 2000 and stats["nodes"]["Item"] == 1000
    assert stats["edges"]["(User)-[:INTERACTED]->(Item)"] > 10_000
    assert (tmp_path / "mokg-data" / "world-demo" / "world.json").exists()
    assert (tmp_path / "mokg-data" / "export" / "graph.pt").exists()
    again = mokg("demo", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(mokg("stats", "--json", cwd=tmp_path).stdout)["edges"] == stats["edges"]


def test_world_generate_and_ingest_commands(tmp_path: Path) -> None:
    r = mokg("world", "generate", "--scale", "nope", "--out", "w", cwd=tmp_path)
    assert r.returncode == 2 and "unknown world scale 'nope'" in r.stderr
    r = mokg("ingest", "nowhere", cwd=tmp_path)
    assert r.returncode == 2 and "not a world directory" in r.stderr


def _tree(command: Any) -> dict[str, Any] | None:
    """A click command's sub-commands, recursively (None for a leaf)."""
    subs = getattr(command, "commands", None)
    return None if subs is None else {name: _tree(sub) for name, sub in subs.items()}


def test_the_command_tree_does_not_depend_on_the_order_modules_register() -> None:
    import typer
    from typer.main import get_command

    from mokg.cli import app
    from mokg.commands import MODULES, register_all

    trees = []
    for modules in (MODULES, tuple(reversed(MODULES))):
        fresh, eval_app = typer.Typer(), typer.Typer()
        fresh.add_typer(eval_app, name="eval")
        register_all(fresh, eval_app, modules)
        trees.append(_tree(get_command(fresh)))
    assert trees[0] == trees[1]
    whole = _tree(get_command(app))
    assert whole is not None and trees[0] is not None
    assert {k: v for k, v in whole.items() if k in trees[0]} == trees[0]
    assert "privatelora" in trees[0]["lightpair"] and "peace" in trees[0]["train"]


def test_query_prints_json_and_writes_files(demo_dir: Path) -> None:
    r = mokg("query", "user_intents", "-p", "user_id=user_ana", "--format", "json", cwd=demo_dir)
    assert r.returncode == 0, r.stderr
    assert [row["intent"] for row in json.loads(r.stdout)] == ["wedding_preparation"]
    r = mokg(
        "query",
        "category_items",
        "-p",
        "category_id=cat_baby",
        "-f",
        "csv",
        "-o",
        "items.csv",
        cwd=demo_dir,
    )
    assert r.returncode == 0, r.stderr
    lines = (demo_dir / "items.csv").read_text().splitlines()
    assert lines[0] == "item,name,category,depth" and len(lines) == 4
    r = mokg(
        "query",
        "path_between",
        "-p",
        "from_label=User",
        "-p",
        "from_id=user_chen",
        "-p",
        "to_label=Brand",
        "-p",
        "to_id=brand_babystep",
        "-f",
        "parquet",
        "-o",
        "p.parquet",
        cwd=demo_dir,
    )
    assert r.returncode == 0, r.stderr
    import pandas as pd

    assert list(pd.read_parquet(demo_dir / "p.parquet")["length"]) == [2]


def test_query_list_and_help_teach(demo_dir: Path) -> None:
    r = mokg("query", "--list", cwd=demo_dir)
    assert "user_intents" in r.stdout and "params: user_id: string" in r.stdout
    for cmd in ["init", "demo", "query", "cypher", "export", "stats", "runs"]:
        h = mokg(cmd, "--help", cwd=demo_dir)
        assert h.returncode == 0 and "Usage" in h.stdout, cmd
    assert "MOKG_STORE" in mokg("--help", cwd=demo_dir).stdout


def test_cypher_is_read_only_unless_write(demo_dir: Path) -> None:
    q = "MATCH (u:User {id: 'user_gus'}) SET u.name = 'Gustav' RETURN u.name AS name"
    r = mokg("cypher", q, cwd=demo_dir)
    assert r.returncode == 2 and "--write" in r.stderr and "Traceback" not in r.stderr
    r = mokg("cypher", q, "--write", "-f", "json", cwd=demo_dir)
    assert r.returncode == 0 and json.loads(r.stdout) == [{"name": "Gustav"}]
    assert "run cypher-" in r.stderr and "mokg runs delete cypher-" in r.stderr  # a write is a run
    r = mokg(
        "cypher",
        "MATCH (u:User) WHERE u.id = $id RETURN u.name AS n",
        "-p",
        "id=user_ben",
        "-f",
        "jsonl",
        cwd=demo_dir,
    )
    assert json.loads(r.stdout) == {"n": "Ben"}


def test_export_formats(demo_dir: Path) -> None:
    r = mokg(
        "export",
        "--format",
        "rdf",
        "--out",
        "near.ttl",
        "--seed",
        "Intent:wedding_preparation",
        "--hops",
        "1",
        cwd=demo_dir,
    )
    assert r.returncode == 0, r.stderr
    import rdflib

    g = rdflib.Graph().parse(demo_dir / "near.ttl")
    rows = list(
        g.query(
            "PREFIX m: <http://mokg.io/ontology#> SELECT ?c WHERE { ?i m:id 'wedding_preparation' . "
            "?i m:NEEDS ?c }"
        )
    )
    assert len(rows) == 3
    for fmt, name in [("pyg", "g.pt"), ("networkx", "g.json"), ("parquet", "pq"), ("neo4j-admin", "na")]:
        r = mokg("export", "-f", fmt, "-o", name, "--label", "User", "--label", "Intent", cwd=demo_dir)
        assert r.returncode == 0, r.stderr
        assert (demo_dir / name).exists()


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--path", "nowhere", "stats"], 2, "no mokg store at nowhere"),
        (["--path", "notastore", "stats"], 2, "is not a mokg store"),
        (["query", "user_intents"], 2, "needs parameter 'user_id'"),
        (["query", "nope"], 2, "no named query 'nope'"),
        (["query", "user_intents", "-p", "user_id"], 2, "KEY=VALUE"),
        (["query", "top_degree", "-p", "label=Person"], 2, "unknown node label 'Person'"),
        (["export", "-f", "rdf", "-o", "/proc/nope/x.ttl"], 2, "cannot write"),
        (["export", "-f", "rdf", "-o", "x.ttl", "--seed", "Intent"], 2, "LABEL:ID"),
        (["cypher", "--max-rows", "1", "MATCH (u:User) RETURN u.id"], 2, "over the limit of 1 (max_rows"),
        (["cypher", "RETURN 1; COMMIT; COMMENT ON TABLE User IS 'x'"], 2, "one statement per call"),
        (["--wait", "-1", "stats"], 2, "wait_s must be a number >= 0"),
        # issue 15: each of these was a traceback (rc 1) or a silent success (rc 0)
        (["--path", "damaged", "stats"], 2, "mokg.json is damaged"),
        (["query", "top_degree", "-f", "csv", "-o", "file.txt/x.csv"], 2, "file.txt is a file, not a folder"),
        (["runs", "list", "-f", "csv", "-o", "file.txt/x.csv"], 2, "file.txt is a file, not a folder"),
        (["export", "-f", "parquet", "-o", "mine"], 2, "refusing to replace mine"),
        (["world", "generate", "--out", "file.txt"], 2, "it is a file"),
        (["world", "generate", "--out", "w", "--seed", "-1"], 2, "--seed must be a non-negative integer"),
        (["world", "generate", "--out", "mine"], 2, "refusing to replace mine"),
        (["world", "generate", "--out", "w", "--users", "0"], 2, "--users and --items must be >= 1"),
        (["subgraph", "--domain", "nope", "--out", "s.pt", "--no-features"], 2, "unknown domain 'nope'"),
        (["cypher", "RETURN $a AS a", "-p", "a=1", "-p", "a=2"], 2, "parameter 'a' is given twice"),
        (["query", "top_degree", "-p", "limit=1", "-p", "limit=2"], 2, "parameter 'limit' is given twice"),
        (["load", "movielens", "latin1.csv"], 2, "latin1.csv: line 2: byte 0xe9"),
    ],
)
def test_bad_input_gets_one_clear_error(demo_dir: Path, args: list[str], code: int, words: str) -> None:
    (demo_dir / "notastore").mkdir(exist_ok=True)
    (demo_dir / "notastore" / "x.txt").write_text("hello")
    (demo_dir / "damaged").mkdir(exist_ok=True)
    (demo_dir / "damaged" / "mokg.json").write_text("{not json")
    (demo_dir / "file.txt").write_text("mine")
    (demo_dir / "mine").mkdir(exist_ok=True)
    (demo_dir / "mine" / "notes.txt").write_text("mine")
    (demo_dir / "latin1.csv").write_bytes("user,item,rating,ts\n1,café,4,5\n".encode("latin-1"))
    r = mokg(*args, cwd=demo_dir)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert words in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert (demo_dir / "file.txt").read_text() == "mine" and not (demo_dir / "s.pt").exists()
    assert [p.name for p in (demo_dir / "mine").iterdir()] == ["notes.txt"]


def test_a_fresh_store_lists_no_runs_and_a_header_only_file_starts_none(tmp_path: Path) -> None:
    assert mokg("init", cwd=tmp_path).returncode == 0
    r = mokg("runs", "list", "-f", "csv", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("id,seq,kind,status"), r.stderr
    (tmp_path / "header.csv").write_text("user,item,rating,ts\n")
    r = mokg("load", "movielens", "header.csv", cwd=tmp_path)
    assert r.returncode == 2 and "no data rows" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(mokg("runs", "list", "-f", "json", cwd=tmp_path).stdout) == []


def test_an_unusable_neo4j_uri_is_one_line(tmp_path: Path) -> None:
    r = mokg("stats", cwd=tmp_path, env={"MOKG_STORE": "neo4j", "MOKG_NEO4J_URI": "notauri"})
    assert r.returncode == 2 and "MOKG_NEO4J_URI 'notauri' is not a URI" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cypher_parameters_are_typed(demo_dir: Path) -> None:
    q = "UNWIND [1, 2, 3] AS x RETURN x, $flag AS flag, $code AS code LIMIT $n"
    r = mokg("cypher", q, "-p", "n=2", "-p", "flag=true", "-p", "code:str=007", "-f", "json", cwd=demo_dir)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"x": x, "flag": True, "code": "007"} for x in (1, 2)]
    r = mokg("query", "top_degree", "-p", "label=Intent", "-p", "limit=2", "-f", "json", cwd=demo_dir)
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 2
    assert "KEY:str=VALUE" in mokg("cypher", "--help", cwd=demo_dir).stdout


def test_unreachable_neo4j_says_what_to_do(tmp_path: Path) -> None:
    env = {
        "MOKG_STORE": "neo4j",
        "MOKG_NEO4J_URI": "bolt://127.0.0.1:1",
        "MOKG_NEO4J_PASSWORD": "x",
    }
    r = mokg("stats", cwd=tmp_path, env=env)
    assert r.returncode == 3
    assert "cannot reach Neo4j at bolt://127.0.0.1:1" in r.stderr and "docker compose" in r.stderr


def test_load_a_public_format_file(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("user,item,rating,ts\n1,10,4,881250949\n2,10,5,881250950\n")
    r = mokg("load", "movielens", "ratings.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    again = mokg("load", "movielens", "ratings.csv", cwd=tmp_path)
    assert again.returncode == 0 and ", 0 created" in again.stdout
    stats = json.loads(mokg("stats", "--json", cwd=tmp_path).stdout)
    assert stats["nodes"]["User"] == 2 and stats["edges"]["(User)-[:INTERACTED]->(Item)"] == 2
    (tmp_path / "bad.csv").write_text("user,item,rating,ts\n1,10,4,yesterday\n")
    bad = mokg("load", "movielens", "bad.csv", cwd=tmp_path)
    assert bad.returncode == 2 and "bad.csv" in bad.stderr and "ts" in bad.stderr
    assert mokg("load", "parquet", "x", cwd=tmp_path).returncode == 2


def test_subgraph_writes_a_split_heterodata(demo_dir: Path) -> None:
    r = mokg("subgraph", "--out", "g.pt", "--split", "temporal", "--no-features", cwd=demo_dir)
    assert r.returncode == 0, r.stderr
    import torch

    payload = torch.load(demo_dir / "g.pt", weights_only=False)
    inter = payload["data"]["User", "INTERACTED", "Item"]
    assert int(inter.train_mask.sum() + inter.val_mask.sum() + inter.test_mask.sum()) == 10
    version = json.loads(mokg("stats", "--json", cwd=demo_dir).stdout)["version"]
    assert payload["split"]["name"] == "temporal" and payload["graph_version"] == version
    assert sorted(payload["id_maps"]["User"]) == payload["id_maps"]["User"]


def test_teacher_serve_speaks_the_openai_protocol(tmp_path: Path) -> None:
    import re

    import openai

    env = {k: v for k, v in os.environ.items() if not k.startswith("MOKG_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mokg", "teacher", "serve", "--port", "0", "--noise", "none"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://\S+/v1", line)
        assert url, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        client = openai.OpenAI(base_url=url.group(0), api_key="x")
        assert [m.id for m in client.models.list()] == [NoiseConfig().model_id()]  # one name per noise config
        from graph.schema import SCHEMA
        from mining.prompts import EntityContext, build_judgement, parse_answer

        msgs = build_judgement(
            EntityContext("wedding preparation", "Intent"), SCHEMA.rel("PRECEDES"), "honeymoon", "Intent"
        )
        reply = client.chat.completions.create(model="mokg-teacher", messages=msgs)  # type: ignore[arg-type]
        assert (
            parse_answer("judge_triple", reply.choices[0].message.content or "").model_dump()["valid"] is True
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    bad = mokg("teacher", "serve", "--noise", "extreme", cwd=tmp_path)
    assert bad.returncode == 2 and "extreme" in bad.stderr
