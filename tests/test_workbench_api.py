"""The workbench's JSON API over real HTTP (httpx → uvicorn) against a real embedded store:
explore (search, node, neighbourhood), named queries (run, CSV/Parquet download, refusals), runs
(list, delete with confirmation), the bearer token, and `mokg serve` itself."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pandas as pd
import pytest

from graph.base import BaseStore
from graph.store import GraphStore, StoreConfig, open_store
from tests.support.workbench import running_workbench, workbench_config

ROOT = Path(__file__).resolve().parents[1]
WEDDING = "int_wedding_preparation"


@pytest.fixture(scope="module")
def store(world_store: tuple[Path, Path]) -> Iterator[GraphStore]:
    """The module's copy of the small world's store, shared by the app and the tests."""
    with open_store(StoreConfig(path=world_store[1])) as opened:
        yield opened


@pytest.fixture(scope="module")
def api(store: GraphStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    config = workbench_config(store.config, tmp_path_factory.mktemp("workbench"))
    with running_workbench(config, store) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    assert message and "\n" not in message
    return message


def busiest_user(api: httpx.Client) -> str:
    rows = ok(api.post("/api/queries/top_degree", json={"params": {"label": "User", "limit": 1}}))["rows"]
    return str(rows[0][0])


def test_search_finds_a_node_by_name_or_id_in_any_case(api: httpx.Client) -> None:
    hits = ok(api.get("/api/search", params={"q": "WEDDING prep"}))["hits"]
    assert {"label": "Intent", "id": WEDDING, "name": "wedding preparation"} in hits
    by_id = ok(api.get("/api/search", params={"q": "Wedding_Prep", "label": "Intent"}))["hits"]
    assert [h["id"] for h in by_id] == [WEDDING]
    assert ok(api.get("/api/search", params={"q": "no such thing at all"}))["hits"] == []
    assert len(ok(api.get("/api/search", params={"q": "u_", "limit": 3}))["hits"]) == 3
    assert "unknown node label 'Intnet'" in refused(
        api.get("/api/search", params={"q": "x", "label": "Intnet"})
    )
    refused(api.get("/api/search", params={"q": ""}))
    refused(api.get("/api/search", params={"q": "x", "limit": "lots"}))


def test_node_properties_and_an_unknown_node(api: httpx.Client) -> None:
    node = ok(api.get(f"/api/node/Intent/{WEDDING}"))
    assert node["properties"]["name"] == "wedding preparation"
    assert node["properties"]["run_id"].startswith("ingest-")
    assert not any(k.startswith("_") for k in node["properties"])
    assert "no Intent with id 'nope'" in refused(api.get("/api/node/Intent/nope"), 404)
    refused(api.get(f"/api/node/Wedding/{WEDDING}"))
    assert "bookkeeping" in refused(api.get("/api/search", params={"q": "ingest", "label": "Run"}))


def test_one_hop_neighbourhood_has_every_edge_with_its_run_and_source(api: httpx.Client) -> None:
    user = busiest_user(api)
    hood = ok(api.get("/api/neighbourhood", params={"label": "User", "id": user, "hops": 1, "limit": 2000}))
    seed = f"User:{user}"
    keys = [n["key"] for n in hood["nodes"]]
    assert keys[0] == seed and len(keys) == len(set(keys)) and not hood["truncated"]
    assert hood["edges"] and all(seed in (e["source"], e["target"]) for e in hood["edges"])
    assert all({e["source"], e["target"]} <= set(keys) for e in hood["edges"])
    runs = {r["run_id"] for r in ok(api.get("/api/runs"))["runs"]}
    assert all(e["run_id"] in runs and e["source_name"] for e in hood["edges"])
    assert all(0.0 <= e["confidence"] <= 1.0 for e in hood["edges"])
    assert any(e["type"] == "INTERACTED" and e["source"] == seed for e in hood["edges"])
    # the same neighbours as the library's k-hop query
    params = {"label": "User", "id": user, "hops": 1, "limit": 5000}
    khop = ok(api.post("/api/queries/k_hop_neighbourhood", json={"params": params}))["rows"]
    assert {f"{label}:{i}" for label, i, *_ in khop} == set(keys) - {seed}


def test_relation_filter_hop_limit_and_node_cap(api: httpx.Client) -> None:
    user = busiest_user(api)
    base = {"label": "User", "id": user}
    both = ok(api.get("/api/neighbourhood", params={**base, "rel": ["INTERACTED", "ACTIVE_IN"]}))
    assert {e["type"] for e in both["edges"]} == {"INTERACTED", "ACTIVE_IN"}
    items = ok(api.get("/api/neighbourhood", params={**base, "rel": "INTERACTED"}))
    assert {e["type"] for e in items["edges"]} == {"INTERACTED"}
    assert {n["label"] for n in items["nodes"][1:]} == {"Item"}
    two = ok(api.get("/api/neighbourhood", params={**base, "hops": 2, "rel": "INTERACTED", "limit": 2000}))
    assert {n["label"] for n in two["nodes"]} == {"User", "Item"} and not two["truncated"]
    assert len(two["nodes"]) > len(items["nodes"])  # other users of the same items
    capped = ok(api.get("/api/neighbourhood", params={**base, "hops": 2, "limit": 5}))
    assert len(capped["nodes"]) == 5 and capped["truncated"]
    keys = {n["key"] for n in capped["nodes"]}
    assert all({e["source"], e["target"]} <= keys for e in capped["edges"])
    assert "unknown relation type 'LIKES'" in refused(
        api.get("/api/neighbourhood", params={**base, "rel": "LIKES"})
    )
    refused(api.get("/api/neighbourhood", params={**base, "hops": 4}))
    refused(api.get("/api/neighbourhood", params={**base, "hops": 0}))
    refused(api.get("/api/neighbourhood", params={"label": "User", "id": "nobody"}), 404)


def test_labels_list_the_schema(api: httpx.Client) -> None:
    names = ok(api.get("/api/labels"))
    assert "User" in names["labels"] and "Run" not in names["labels"]
    assert "HAS_INTENT" in names["relations"]


def test_query_library_lists_declared_parameters(api: httpx.Client) -> None:
    queries = {q["name"]: q for q in ok(api.get("/api/queries"))["queries"]}
    assert queries["user_intents"]["params"] == [
        {"name": "user_id", "type": "string", "required": True, "default": None},
        {"name": "min_confidence", "type": "float", "required": False, "default": "0.0"},
    ]
    assert queries["forget_user_thoughts"]["writes"] and not queries["top_degree"]["writes"]


def test_named_query_runs_and_downloads_csv_and_parquet(api: httpx.Client) -> None:
    params = {"label": "Intent", "limit": "5"}
    table = ok(api.post("/api/queries/top_degree", json={"params": params}))
    assert table["columns"] == ["id", "name", "degree"] and len(table["rows"]) == 5
    expected = pd.DataFrame(table["rows"], columns=table["columns"])
    csv = api.get("/api/queries/top_degree/download", params={"format": "csv", **params})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert 'filename="top_degree.csv"' in csv.headers["content-disposition"]
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(csv.text)), expected)
    parquet = api.get("/api/queries/top_degree/download", params={"format": "parquet", **params})
    assert parquet.status_code == 200
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(parquet.content)), expected)


def test_writes_unknown_queries_and_bad_parameters_are_refused(api: httpx.Client) -> None:
    message = refused(api.post("/api/queries/forget_user_thoughts", json={"params": {"user_id": "u1"}}))
    assert "writes" in message
    assert "no named query 'drop_all'" in refused(api.post("/api/queries/drop_all", json={"params": {}}), 404)
    refused(api.get("/api/queries/drop_all/download"), 404)
    assert "must be int" in refused(api.post("/api/queries/top_degree", json={"params": {"limit": "many"}}))
    assert "must be label" in refused(
        api.post("/api/queries/top_degree", json={"params": {"label": "User) DETACH DELETE (x"}})
    )
    assert "needs parameter 'user_id'" in refused(api.post("/api/queries/user_intents", json={"params": {}}))
    assert "no parameter" in refused(api.post("/api/queries/top_degree", json={"params": {"cypher": "x"}}))
    refused(api.post("/api/queries/top_degree", json={"params": {"limit": 2**70}}))
    refused(api.post("/api/queries/top_degree", json={"cypher": "MATCH (n) DETACH DELETE n"}))
    refused(api.get("/api/queries/top_degree/download", params={"format": "xlsx"}))
    refused(api.get("/api/queries/top_degree/download", params={"limit": ["1", "2"]}))


def test_runs_are_listed_and_deleted_only_with_confirmation(api: httpx.Client, store: GraphStore) -> None:
    with store.run_context("test", note="a brand to roll back") as run_id:
        store.upsert_nodes("Brand", [{"id": "brand_rollback", "name": "Rollback Brand"}], run_id=run_id)
    runs = {r["run_id"]: r for r in ok(api.get("/api/runs"))["runs"]}
    assert runs[run_id]["status"] == "done" and runs[run_id]["nodes"] == 1
    assert runs[run_id]["created"] == {"node": {"Brand": 1}}
    assert runs[run_id]["graph_version"].endswith(run_id)
    ingest = next(r for r in runs.values() if r["kind"] == "ingest")
    assert ingest["nodes"] > 0 and ingest["edges"] > 0
    assert "needs confirm" in refused(api.delete(f"/api/runs/{run_id}"))
    refused(api.delete(f"/api/runs/{run_id}", params={"confirm": "yes"}))
    refused(api.delete("/api/runs/no-such-run", params={"confirm": "no-such-run"}), 404)
    assert ok(api.get("/api/search", params={"q": "brand_rollback"}))["hits"]
    counts = ok(api.delete(f"/api/runs/{run_id}", params={"confirm": run_id}))
    assert counts["nodes_deleted"] == 1
    assert run_id not in {r["run_id"] for r in ok(api.get("/api/runs"))["runs"]}
    assert ok(api.get("/api/search", params={"q": "brand_rollback"}))["hits"] == []


def test_token_is_required_on_every_api_request(store: GraphStore, tmp_path: Path) -> None:
    config = workbench_config(store.config, tmp_path, token="s3cret-token")
    with running_workbench(config, store) as url:
        assert refused(httpx.get(f"{url}/api/labels"), 401) == "missing or wrong bearer token"
        refused(httpx.get(f"{url}/api/labels", headers={"Authorization": "Bearer wrong"}), 401)
        refused(httpx.get(f"{url}/api/labels", params={"token": "s3cret-token"}), 401)  # pages only
        ok(httpx.get(f"{url}/api/labels", headers={"Authorization": "Bearer s3cret-token"}))


def _mokg(*args: str, **kw: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "mokg", *args],
        text=True,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def test_serve_refuses_an_open_host_without_a_token(tmp_path: Path) -> None:
    proc = _mokg("--path", str(tmp_path / "none"), "serve", "--host", "0.0.0.0", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "--token" in err and "0.0.0.0" in err


@pytest.mark.slow
def test_serve_opens_the_store_and_says_so(_small_world: tuple[Path, Path], tmp_path: Path) -> None:
    graph = tmp_path / "graph"
    shutil.copytree(_small_world[1], graph)  # the session's store, which no one holds open
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _mokg("--path", str(graph), "serve", "--port", str(port), "--token", "tok-1", cwd=tmp_path)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line and str(graph) in line and "token required" in line
        headers = {"Authorization": "Bearer tok-1"}
        hits = httpx.get(f"http://127.0.0.1:{port}/api/search", params={"q": WEDDING}, headers=headers)
        assert ok(hits)["hits"][0]["id"] == WEDDING
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.mark.slow
def test_serve_on_a_taken_port_is_a_one_line_error(_small_world: tuple[Path, Path], tmp_path: Path) -> None:
    graph = tmp_path / "graph"
    shutil.copytree(_small_world[1], graph)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _mokg("--path", str(graph), "serve", "--port", str(port), cwd=tmp_path)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and f"127.0.0.1:{port}" in err and "--port" in err


@pytest.mark.parametrize("backend", ["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def test_edge_directions_and_runs_on_each_backend(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    embedded = backend == "embedded"
    config = StoreConfig(path=tmp_path / "graph") if embedded else request.getfixturevalue("bolt_config")
    with open_store(config, create=True) as store:
        clear = cast(BaseStore, store)._in_write_tx  # a shared server database: emptied first and last
        if not embedded:
            clear(lambda ex: ex("MATCH (n) DETACH DELETE n", {}))
        try:
            run_id = _seed_tiny(store)
            served = running_workbench(workbench_config(config, tmp_path), store)
            with served as url, httpx.Client(base_url=url) as api:
                _check_tiny(api, run_id)
        finally:
            if not embedded:
                clear(lambda ex: ex("MATCH (n) DETACH DELETE n", {}))


def _check_tiny(api: httpx.Client, run_id: str) -> None:
    hits = ok(api.get("/api/search", params={"q": "WEDD"}))["hits"]
    assert hits == [{"label": "Intent", "id": "wedding", "name": "wedding preparation"}]
    assert ok(api.get("/api/search", params={"q": "zzz"}))["hits"] == []
    hood = ok(api.get("/api/neighbourhood", params={"label": "Intent", "id": "wedding"}))
    assert {(e["source"], e["type"], e["target"], e["run_id"]) for e in hood["edges"]} == {
        ("User:u1", "HAS_INTENT", "Intent:wedding", run_id),  # the seed is the tail: direction kept
        ("Intent:wedding", "PRECEDES", "Intent:honeymoon", run_id),
    }
    params = {"label": "Intent", "id": "wedding", "rel": "PRECEDES"}
    assert [e["type"] for e in ok(api.get("/api/neighbourhood", params=params))["edges"]] == ["PRECEDES"]
    alone = ok(api.get("/api/neighbourhood", params={**params, "rel": "NEEDS"}))
    assert [n["key"] for n in alone["nodes"]] == ["Intent:wedding"] and alone["edges"] == []
    far = ok(api.get("/api/neighbourhood", params={"label": "User", "id": "u1", "hops": 3}))
    assert [n["key"] for n in far["nodes"]] == ["User:u1", "Intent:wedding", "Intent:honeymoon"]
    assert len(far["edges"]) == 2 and not far["truncated"]
    assert ok(api.get("/api/node/User/u1"))["properties"]["name"] == "Ann"
    runs = {r["run_id"]: r for r in ok(api.get("/api/runs"))["runs"]}
    assert (runs[run_id]["nodes"], runs[run_id]["edges"]) == (3, 2)


def _seed_tiny(store: GraphStore) -> str:
    """Ann, who has the intent wedding preparation, which precedes honeymoon: one run."""
    with store.run_context("test") as run_id:
        store.upsert_nodes("User", [{"id": "u1", "name": "Ann"}], run_id=run_id)
        intents = [{"id": "wedding", "name": "wedding preparation"}, {"id": "honeymoon", "name": "honeymoon"}]
        store.upsert_nodes("Intent", intents, run_id=run_id)
        has = [{"head": "u1", "tail": "wedding", "confidence": 0.9}]
        store.upsert_edges("HAS_INTENT", has, run_id=run_id)
        store.upsert_edges("PRECEDES", [{"head": "wedding", "tail": "honeymoon"}], run_id=run_id)
    return run_id
