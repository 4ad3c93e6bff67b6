"""The workbench's review API over HTTP (issue 22): the queue of mined facts and its filters, a fact's
provenance and the passage that states it, decisions written as the feedback `mokg feedback import`
reads, and a rejected fact retired (its edge removed) in a run that `mokg runs delete` undoes.

A real embedded store (the small world) with a small PAIR build against the world's teacher; the app
is served by uvicorn on a free port (:mod:`tests.support.workbench`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from graph.store import StoreConfig, open_store
from tests.support.workbench import running_workbench, workbench_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHUNK_TEXT = "Before the big day most couples shop for wedding dresses and suits together."


def _mine(world: Path, graph: Path, work: Path) -> str:
    """A 4-seed, 1-round PAIR build against the world's teacher; the mining run's id."""
    from mining.llm.assemble import LLMSpec
    from mining.pipeline.build import BuildRequest, run_build
    from mining.pipeline.config import MiningConfig

    spec = LLMSpec("teacher", noise="medium", world=world, cache=work / "llm")
    request = BuildRequest(MiningConfig(rounds=1, samples=3), spec, "intents", limit=4, workdir=work / "w")
    with open_store(StoreConfig(path=graph)) as store:
        return str(run_build(store, request).run_id)


def _cite(graph: Path) -> tuple[str, str, str]:
    """A document chunk that states one mined NEEDS fact (its spans); (head, tail, chunk id)."""
    with open_store(StoreConfig(path=graph)) as store:
        fact = store.edge_table(("Intent", "NEEDS", "Category"), ["evidence"]).iloc[0]
        with store.run_context("test", "a document citing a mined fact") as run_id:
            store.bulk_load(
                run_id=run_id,
                nodes={
                    "Document": pd.DataFrame([{"id": "doc_1", "name": "Wedding guide", "text": CHUNK_TEXT}]),
                    "Chunk": pd.DataFrame([{"id": "doc_1#0", "text": CHUNK_TEXT, "document": "doc_1"}]),
                },
                edges={
                    ("Document", "HAS_CHUNK", "Chunk"): pd.DataFrame({"head": ["doc_1"], "tail": ["doc_1#0"]})
                },
            )
            spans = json.dumps([["doc_1#0", 41, 56]])
            row = {"head": fact["head"], "tail": fact["tail"], "spans": spans}
            store.upsert_edges("NEEDS", [row], run_id=run_id, head="Intent", tail="Category")
    return str(fact["head"]), str(fact["tail"]), "doc_1#0"


@pytest.fixture(scope="module")
def mined(world_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The store with mined facts (and one cited by a document), a pristine copy, the run id."""
    world, graph = world_store
    root = tmp_path_factory.mktemp("review")
    run_id = _mine(world, graph, root)
    cited = _cite(graph)
    shutil.copytree(graph, root / "pristine")
    return {"world": world, "graph": graph, "pristine": root / "pristine", "run": run_id, "cited": cited}


@pytest.fixture(scope="module")
def served(mined: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    config = workbench_config(mined["graph"], tmp_path_factory.mktemp("review-files"))
    with running_workbench(config) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield {**mined, "client": client, "config": config}


def _queue(client: httpx.Client, **params: Any) -> dict[str, Any]:
    r = client.get("/api/review", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_the_queue_filters_by_relation_band_and_run_and_pages(served: dict[str, Any]) -> None:
    client = served["client"]
    everything = _queue(client, limit=500)
    items = everything["items"]
    assert everything["total"] == len(items) >= 5
    assert {i["relation"] for i in items} <= {"NEEDS", "CO_OCCURS_WITH", "PRECEDES", "SERVES", "RELATED_TO"}
    assert [i["confidence"] for i in items] == sorted(i["confidence"] for i in items)  # least sure first
    first = items[0]
    assert set(first) >= {"key", "head", "relation", "tail", "confidence", "vote", "relatedness", "run_id"}
    assert first["head"]["label"] == "Intent" and first["head"]["name"] and first["decision"] is None
    evidence = first["evidence"]  # parsed provenance: prompts, one response per sample, the round
    assert evidence["samples"] == 3 and len(evidence["responses"]) == 3 * len(evidence["prompts"])
    assert evidence["round"] == 1 and first["run_id"] == served["run"]

    needs = _queue(client, relation="NEEDS", limit=500)
    assert 0 < needs["total"] < everything["total"] or {i["relation"] for i in items} == {"NEEDS"}
    assert {i["relation"] for i in needs["items"]} == {"NEEDS"}
    assert needs["total"] == sum(i["relation"] == "NEEDS" for i in items)
    band = _queue(client, min_conf=0.5, max_conf=0.7, limit=500)
    assert band["total"] == sum(0.5 <= i["confidence"] <= 0.7 for i in items)
    assert all(0.5 <= i["confidence"] <= 0.7 for i in band["items"])
    assert _queue(client, run=served["run"])["total"] == everything["total"]
    assert _queue(client, run="mine-19700101T000000-1")["total"] == 0
    pages = [_queue(client, offset=k, limit=2)["items"] for k in range(0, everything["total"], 2)]
    assert [i["key"] for page in pages for i in page] == [i["key"] for i in items]

    refused = {
        "relation=HAS_INTENT": "is not mined",
        "relation=NOPE": "unknown relation type 'NOPE'",
        "min_conf=0.9&max_conf=0.2": "0 <= min_conf <= max_conf <= 1",
        "limit=0": "limit 1..500",
    }
    for query, words in refused.items():
        r = client.get(f"/api/review?{query}")
        assert r.status_code == 400 and words in r.json()["error"], (query, r.text)


def test_a_fact_stated_in_a_document_shows_its_passage(served: dict[str, Any]) -> None:
    head, tail, chunk = served["cited"]
    items = _queue(served["client"], relation="NEEDS", limit=500)["items"]
    [cited] = [i for i in items if (i["head"]["id"], i["tail"]["id"]) == (head, tail)]
    [span] = cited["spans"]
    assert span["chunk"] == chunk and span["document"] == "doc_1" and span["title"] == "Wedding guide"
    assert span["passage"] == CHUNK_TEXT and span["text"] == "wedding dresses" == CHUNK_TEXT[41:56]
    assert all(i["spans"] == [] for i in items if i is not cited)


def test_decisions_are_feedback_that_mokg_feedback_import_reads(
    served: dict[str, Any], tmp_path: Path
) -> None:
    from mokg.cli import app

    client, feedback = served["client"], served["config"].feedback
    first, second = _queue(client, limit=2)["items"]
    skip = client.post("/api/review/decision", json={"key": first["key"], "decision": "skip"})
    assert skip.json() == {"decision": "skip", "feedback_file": None, "retired_run": None}
    assert not feedback.exists()  # a skip writes nothing
    for key, decision in ((first["key"], "accept"), (second["key"], "accept"), (second["key"], "reject")):
        r = client.post("/api/review/decision", json={"key": key, "decision": decision})
        assert r.status_code == 200 and r.json()["feedback_file"] == str(feedback), r.text
    rows = [json.loads(x) for x in feedback.read_text().splitlines()]
    assert len(rows) == 2  # the second decision on a triple replaced the first
    assert {(r["head"], r["relation"], r["tail"], r["label"]) for r in rows} == {
        (first["head"]["name"], first["relation"], first["tail"]["name"], 1),
        (second["head"]["name"], second["relation"], second["tail"]["name"], 0),
    }
    shown = {i["key"]: i["decision"] for i in _queue(client, limit=2)["items"]}
    assert shown == {first["key"]: "accept", second["key"]: "reject"}

    into = tmp_path / "imported.jsonl"
    result = CliRunner().invoke(app, ["feedback", "import", str(feedback), "--into", str(into)])
    assert result.exit_code == 0, result.output
    assert f"imported 2 feedback rows from {feedback}" in result.output
    imported = {
        (r["head"], r["relation"], r["tail"], r["z"]) for r in map(json.loads, into.read_text().splitlines())
    }
    assert (first["head"]["name"], first["relation"], first["tail"]["name"], 1.0) in imported

    refused = {
        json.dumps(
            {"key": first["key"], "decision": "maybe"}
        ): "decision must be one of accept, reject, skip",
        json.dumps({"key": first["key"], "decision": "accept", "retire": True}): "only a rejected fact",
        json.dumps({"key": "not a key", "decision": "accept"}): "is not a fact key",
        json.dumps({"key": json.dumps(["User", "u1", "HAS_INTENT", "Intent", "i"]), "decision": "accept"}): (
            "HAS_INTENT is not mined"
        ),
        json.dumps({"key": json.dumps(["Intent", "nope", "NEEDS", "Category", "x"]), "decision": "reject"}): (
            "no mined fact"
        ),
    }
    for body, words in refused.items():
        r = client.post("/api/review/decision", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and words in r.json()["error"], (body, r.text)


def _edges(graph: Path, fact: dict[str, Any]) -> pd.DataFrame:
    """The stored rows (every property) of the fact's edge: one, or none once it is retired."""
    key = (fact["head"]["label"], fact["relation"], fact["tail"]["label"])
    with open_store(StoreConfig(path=graph)) as store:
        columns = [p.name for p in store.schema.rel(fact["relation"]).props]
        df = store.edge_table(key, columns)
    mine = (df["head"] == fact["head"]["id"]) & (df["tail"] == fact["tail"]["id"])
    return pd.DataFrame(df[mine].reset_index(drop=True))


def _tail_is_neighbour(client: httpx.Client, seed: dict[str, str], fact: dict[str, Any]) -> bool:
    """Whether the explore page's neighbourhood of the fact's head shows the fact's edge."""
    params = {**seed, "rel": fact["relation"], "limit": 500}
    r = client.get("/api/neighbourhood", params=params)
    assert r.status_code == 200, r.text
    tail = f"{fact['tail']['label']}:{fact['tail']['id']}"
    return any(e["type"] == fact["relation"] and e["target"] == tail for e in r.json()["edges"])


def test_a_retired_fact_leaves_the_graph_and_comes_back_with_mokg_runs_delete(
    mined: dict[str, Any], tmp_path: Path
) -> None:
    from mokg.cli import app

    graph = tmp_path / "graph"
    shutil.copytree(mined["pristine"], graph)
    config = workbench_config(graph, tmp_path / "files")
    with running_workbench(config) as url, httpx.Client(base_url=url, timeout=120) as client:
        fact = _queue(client, limit=500)["items"][-1]  # the most confident fact
        before = _edges(graph, fact)
        assert len(before) == 1 and before["run_id"].iloc[0] == mined["run"]
        seed = {"label": fact["head"]["label"], "id": fact["head"]["id"]}
        assert _tail_is_neighbour(client, seed, fact)
        body = {"key": fact["key"], "decision": "reject", "retire": True}
        r = client.post("/api/review/decision", json=body)
        assert r.status_code == 200, r.text
        run = r.json()["retired_run"]
        assert run.startswith("review-") and r.json()["feedback_file"] == str(config.feedback)
        items = _queue(client, relation=fact["relation"], limit=500)["items"]
        assert fact["key"] not in {i["key"] for i in items}
        assert not _tail_is_neighbour(client, seed, fact)
        again = client.post("/api/review/decision", json=body)
        assert again.status_code == 400 and "mokg runs delete" in again.json()["error"]
    assert _edges(graph, fact).empty

    result = CliRunner().invoke(app, ["--path", str(graph), "runs", "delete", run, "--yes"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    assert counts["values_restored"] == len(before.columns) - 2 and counts["restore_conflicts"] == 0
    pd.testing.assert_frame_equal(_edges(graph, fact), before)  # every property, run_id, created_at
    with open_store(StoreConfig(path=graph)) as store:
        assert run not in set(store.runs()["id"])


def _edge_in(client: httpx.Client, fact: dict[str, Any]) -> dict[str, Any]:
    items = _queue(client, relation=fact["relation"], limit=500)["items"]
    [item] = [i for i in items if i["key"] == fact["key"]]
    assert isinstance(item, dict)
    return item
