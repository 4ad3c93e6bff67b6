"""The GraphStore contract, run on every backend (embedded LadybugDB; Neo4j dialect over Bolt)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from graph.errors import InputError, QueryError, SchemaError
from graph.store import GraphStore

USERS = [{"id": "u1", "name": "Ann"}, {"id": "u2", "name": "Bo"}, {"id": "u3", "name": "Cy"}]
INTENTS = [
    {"id": "wedding", "name": "wedding preparation"},
    {"id": "honeymoon", "name": "honeymoon"},
]


def seed(store: GraphStore) -> str:
    run_id = store.start_run("test")
    store.upsert_nodes("User", USERS, run_id=run_id)
    store.upsert_nodes("Intent", INTENTS, run_id=run_id)
    store.upsert_nodes(
        "Category",
        [
            {"id": "c_root", "name": "Clothing", "level": 0},
            {"id": "c_dress", "name": "Dresses", "level": 1},
        ],
        run_id=run_id,
    )
    store.upsert_nodes("Item", [{"id": "i1", "name": "Ivory gown", "price": 899.0}], run_id=run_id)
    store.upsert_edges(
        "HAS_INTENT",
        [
            {"head": "u1", "tail": "wedding", "confidence": 0.9},
            {"head": "u2", "tail": "honeymoon", "confidence": 0.4},
        ],
        run_id=run_id,
    )
    store.upsert_edges(
        "PRECEDES", [{"head": "wedding", "tail": "honeymoon", "confidence": 0.8}], run_id=run_id
    )
    store.upsert_edges("SUBCATEGORY_OF", [{"head": "c_dress", "tail": "c_root"}], run_id=run_id)
    store.upsert_edges("BELONGS_TO", [{"head": "i1", "tail": "c_dress"}], run_id=run_id, head="Item")
    store.upsert_edges(
        "NEEDS",
        [{"head": "wedding", "tail": "c_dress", "confidence": 0.95}],
        run_id=run_id,
        tail="Category",
    )
    store.finish_run(run_id)
    return run_id


def snapshot(store: GraphStore) -> dict[str, Any]:
    sub = store.subgraph()
    return {
        "nodes": {k: df.sort_values("id").reset_index(drop=True) for k, df in sub.nodes.items()},
        "edges": {k: df.sort_values(["head", "tail"]).reset_index(drop=True) for k, df in sub.edges.items()},
    }


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["nodes"].keys() == b["nodes"].keys()
    assert a["edges"].keys() == b["edges"].keys()
    for k in a["nodes"]:
        pd.testing.assert_frame_equal(a["nodes"][k], b["nodes"][k])
    for k in a["edges"]:
        pd.testing.assert_frame_equal(a["edges"][k], b["edges"][k])


def test_init_schema_is_idempotent(store: GraphStore) -> None:
    store.init_schema()
    store.init_schema()
    assert store.stats()["total_nodes"] == 0


def test_upsert_and_counts(store: GraphStore) -> None:
    run_id = seed(store)
    stats = store.stats()
    assert stats["nodes"]["User"] == 3 and stats["nodes"]["Intent"] == 2
    assert stats["edges"]["(User)-[:HAS_INTENT]->(Intent)"] == 2
    assert stats["total_edges"] == 6
    assert stats["version"]["run_id"] == run_id and stats["version"]["seq"] == 1


def test_rerunning_a_write_is_a_no_op(store: GraphStore) -> None:
    run_id = seed(store)
    before = snapshot(store)
    store.upsert_nodes("User", USERS, run_id=run_id)
    store.upsert_edges(
        "HAS_INTENT",
        [
            {"head": "u1", "tail": "wedding", "confidence": 0.9},
            {"head": "u2", "tail": "honeymoon", "confidence": 0.4},
        ],
        run_id=run_id,
    )
    assert_same(before, snapshot(store))


def test_update_changes_given_properties_and_keeps_the_rest(store: GraphStore) -> None:
    seed(store)
    run2 = store.start_run("update")
    store.upsert_nodes("Item", [{"id": "i1", "title": "Gown, ivory"}], run_id=run2)
    store.upsert_edges("HAS_INTENT", [{"head": "u1", "tail": "wedding", "confidence": 0.5}], run_id=run2)
    item = store.run(
        "MATCH (i:Item {id: 'i1'}) RETURN i.name AS name, i.title AS title, "
        "i.price AS price, i.run_id AS run_id"
    )
    assert item.to_dict("records")[0]["title"] == "Gown, ivory"
    assert item["name"][0] == "Ivory gown" and item["price"][0] == 899.0
    assert item["run_id"][0] != run2  # provenance: the run that created it
    intents = store.run("user_intents", {"user_id": "u1"})
    assert intents["confidence"].tolist() == [0.5]


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda s, r: s.upsert_nodes("Person", [{"id": "x"}], run_id=r), SchemaError, "Person"),
        (
            lambda s, r: s.upsert_edges("LIKES", [{"head": "u1", "tail": "u2"}], run_id=r),
            SchemaError,
            "LIKES",
        ),
        (lambda s, r: s.upsert_nodes("User", [{"name": "no key"}], run_id=r), InputError, "'id'"),
        (
            lambda s, r: s.upsert_nodes("Item", [{"id": "i9", "price": "cheap"}], run_id=r),
            InputError,
            "price",
        ),
        (
            lambda s, r: s.upsert_nodes("User", [{"id": "u9", "age": 3}], run_id=r),
            InputError,
            "age",
        ),
        (
            lambda s, r: s.upsert_nodes("User", [{"id": "u9"}, {"id": "u9"}], run_id=r),
            InputError,
            "duplicate",
        ),
        (
            lambda s, r: s.upsert_edges("HAS_INTENT", [{"head": "u1", "tail": "nope"}], run_id=r),
            InputError,
            "nope",
        ),
        (
            lambda s, r: s.upsert_edges(
                "HAS_INTENT", [{"head": "u1", "tail": "wedding", "confidence": 1.5}], run_id=r
            ),
            InputError,
            "confidence",
        ),
        (
            lambda s, r: s.upsert_edges("NEEDS", [{"head": "wedding", "tail": "c_dress"}], run_id=r),
            SchemaError,
            "several endpoint pairs",
        ),
        (
            lambda s, r: s.upsert_edges("HAS_INTENT", [{"head": "u1", "tail": "u2"}], run_id=r, tail="User"),
            SchemaError,
            "not allowed",
        ),
        (
            lambda s, r: s.upsert_nodes("User", [{"id": "u9"}], run_id="no-such-run"),
            InputError,
            "unknown run",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    store: GraphStore, call: Any, error: type[Exception], words: str
) -> None:
    seed(store)
    run_id = store.start_run("bad")
    before = snapshot(store)
    with pytest.raises(error, match=words):
        call(store, run_id)
    assert_same(before, snapshot(store))


def test_a_batch_failing_mid_transaction_rolls_back_everything(
    store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(store)
    before = snapshot(store)
    run_id = store.start_run("partial")
    calls = {"n": 0}
    original = type(store)._write_batch  # type: ignore[attr-defined]

    def failing(self: Any, ex: Any, query: str, rows: Any, params: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash after the first batch")
        original(self, ex, query, rows, params)

    monkeypatch.setattr(type(store), "_write_batch", failing)
    monkeypatch.setattr(store, "config", store.config.__class__(**{**store.config.__dict__, "batch_size": 1}))
    renamed = [{"id": u["id"], "name": u["name"] + " (renamed)"} for u in USERS]
    with pytest.raises(RuntimeError, match="simulated"):
        store.upsert_nodes("User", renamed, run_id=run_id)
    assert calls["n"] == 2
    assert_same(before, snapshot(store))


def test_bulk_load_is_idempotent_and_updates(store: GraphStore) -> None:
    run_id = store.start_run("bulk")
    users = pd.DataFrame({"id": [f"u{i}" for i in range(50)], "name": [f"n{i}" for i in range(50)]})
    items = pd.DataFrame({"id": [f"i{i}" for i in range(20)], "price": [float(i) for i in range(20)]})
    inter = pd.DataFrame(
        {
            "head": [f"u{i}" for i in range(50)],
            "tail": [f"i{i % 20}" for i in range(50)],
            "ts": pd.to_datetime(["2026-01-02T03:04:05"] * 50),
            "kind": ["click"] * 50,
        }
    )
    report = store.bulk_load(run_id=run_id, nodes={"User": users, "Item": items}, edges={"INTERACTED": inter})
    assert report.total_rows() == 120
    first = snapshot(store)
    store.bulk_load(run_id=run_id, nodes={"User": users, "Item": items}, edges={"INTERACTED": inter})
    assert_same(first, snapshot(store))
    e = first["edges"][("User", "INTERACTED", "Item")]
    assert len(e) == 50 and set(e["confidence"]) == {1.0}
    assert e["ts"].iloc[0] == pd.Timestamp("2026-01-02T03:04:05")
    items2 = items.assign(price=items["price"] + 1)
    store.bulk_load(run_id=run_id, nodes={"Item": items2})
    prices = store.run("MATCH (i:Item) RETURN i.id AS id, i.price AS price ORDER BY id")
    assert dict(zip(prices["id"], prices["price"], strict=True))["i3"] == 4.0


@pytest.mark.parametrize(
    ("frames", "words"),
    [
        ({"nodes": {"User": pd.DataFrame({"id": ["a", "a"]})}}, "duplicate key"),
        ({"nodes": {"User": pd.DataFrame({"name": ["a"]})}}, "missing key column 'id'"),
        ({"nodes": {"User": pd.DataFrame({"id": ["a"], "shoe": [1]})}}, "unknown column"),
        ({"nodes": {"Item": pd.DataFrame({"id": ["a", "b"], "price": [1.0, "x"]})}}, "row 1"),
        ({"edges": {"INTERACTED": pd.DataFrame({"head": ["u1"], "tail": ["zz"]})}}, "'zz'"),
        (
            {"edges": {"INTERACTED": pd.DataFrame({"head": ["u1"], "tail": ["i1"], "ts": ["not a date"]})}},
            "ts",
        ),
    ],
)
def test_bulk_load_bad_input(store: GraphStore, frames: dict[str, Any], words: str) -> None:
    seed(store)
    before = snapshot(store)
    run_id = store.start_run("bulk")
    with pytest.raises(InputError, match=words):
        store.bulk_load(run_id=run_id, **frames)
    assert_same(before, snapshot(store))


def test_run_is_read_only_unless_asked(store: GraphStore) -> None:
    seed(store)
    with pytest.raises(QueryError, match="read-only"):
        store.run("MATCH (u:User {id: 'u1'}) SET u.name = 'X' RETURN u.id")
    store.run("MATCH (u:User {id: 'u1'}) SET u.name = 'X' RETURN u.id", read_only=False)
    assert store.run("MATCH (u:User {id: 'u1'}) RETURN u.name AS n")["n"][0] == "X"
    # a literal containing a write word is not a write
    assert len(store.run("MATCH (u:User) WHERE u.name = 'SET ME' RETURN u.id")) == 0


def test_named_query_parameters_are_checked(store: GraphStore) -> None:
    seed(store)
    with pytest.raises(QueryError, match="needs parameter 'user_id'"):
        store.run("user_intents", {})
    with pytest.raises(QueryError, match="no parameter"):
        store.run("user_intents", {"user_id": "u1", "colour": "red"})
    with pytest.raises(QueryError, match="must be hops"):
        store.run("users_near_intent", {"intent_id": "wedding", "hops": 9})
    with pytest.raises(QueryError, match="must be label"):
        store.run("top_degree", {"label": "User) DETACH DELETE (x"})
    with pytest.raises(QueryError, match="no named query"):
        store.run("not_a_query")


def test_every_named_query_runs(store: GraphStore) -> None:
    from queries.library import load_library

    seed(store)
    args: dict[str, dict[str, Any]] = {
        "user_intents": {"user_id": "u1"},
        "users_near_intent": {"intent_id": "honeymoon", "hops": 2},
        "k_hop_neighbourhood": {"label": "User", "id": "u1", "hops": 2},
        "top_relations": {"rel_type": "HAS_INTENT"},
        "category_items": {"category_id": "c_root"},
        "path_between": {"from_label": "User", "from_id": "u1", "to_label": "User", "to_id": "u2"},
        "top_degree": {"label": "Intent"},
        "fact_sources": {
            "head_label": "Intent",
            "head_id": "wedding",
            "rel_type": "NEEDS",
            "tail_id": "c_dress",
        },
    }
    lib = load_library()
    results = {name: store.run(name, args.get(name, {})) for name in lib.names()}
    assert results["user_intents"]["intent"].tolist() == ["wedding"]
    assert set(results["users_near_intent"]["user"]) == {"u1", "u2"}
    khop = results["k_hop_neighbourhood"]
    assert dict(zip(khop["id"], khop["distance"], strict=True)) == {
        "wedding": 1,
        "honeymoon": 2,
        "c_dress": 2,
    }
    assert results["top_relations"]["confidence"].tolist() == [0.9, 0.4]
    assert results["category_items"][["item", "depth"]].values.tolist() == [["i1", 1]]
    assert list(results["path_between"]["ids"][0]) == ["u1", "wedding", "honeymoon", "u2"]
    counts = results["label_counts"]
    assert dict(zip(counts["label"], counts["count"], strict=True))["User"] == 3
    rel = results["relation_counts"]
    assert dict(zip(rel["relation"], rel["count"], strict=True))["HAS_INTENT"] == 2
    assert results["top_degree"]["id"].tolist()[0] == "wedding"


def test_fact_sources_names_the_chunks_that_state_a_fact(store: GraphStore) -> None:
    """A fact mined from text answers "where did this come from" with its document and passage."""
    seed(store)
    with store.run_context("docs") as run_id:
        store.upsert_nodes("Document", [{"id": "d1", "name": "Wedding guide", "text": "x"}], run_id=run_id)
        chunks = [{"id": f"d1#{i}", "text": f"passage {i}", "document": "d1", "position": i} for i in (0, 1)]
        store.upsert_nodes("Chunk", chunks, run_id=run_id)
        store.upsert_edges("HAS_CHUNK", [{"head": "d1", "tail": c["id"]} for c in chunks], run_id=run_id)
        fact = {"head": "wedding", "tail": "c_dress", "confidence": 0.95, "spans": '[["d1#1", 0, 9]]'}
        store.upsert_edges("NEEDS", [fact], run_id=run_id, tail="Category")
    found = store.run(
        "fact_sources",
        {"head_label": "Intent", "head_id": "wedding", "rel_type": "NEEDS", "tail_id": "c_dress"},
    )
    assert found[["document", "chunk", "passage"]].values.tolist() == [["d1", "d1#1", "passage 1"]]
    assert found["confidence"].tolist() == [0.95]


def test_subgraph_whole_and_k_hop(store: GraphStore) -> None:
    run_id = seed(store)
    sub = store.subgraph()
    assert sub.num_nodes() == 8 and sub.num_edges() == 6
    assert sub.version.run_id == run_id
    near = store.subgraph(seeds={"User": ["u1"]}, hops=1)
    assert {k: sorted(df["id"]) for k, df in near.nodes.items()} == {
        "User": ["u1"],
        "Intent": ["wedding"],
    }
    assert list(near.edges) == [("User", "HAS_INTENT", "Intent")]
    only = store.subgraph(labels=["User", "Intent"], rel_types=["HAS_INTENT"])
    assert set(only.edges) == {("User", "HAS_INTENT", "Intent")}


def test_delete_run_removes_only_what_the_run_created(store: GraphStore) -> None:
    first = seed(store)
    second = store.start_run("second")
    store.upsert_nodes("User", [{"id": "u4", "name": "Di"}], run_id=second)
    store.upsert_edges(
        "HAS_INTENT",
        [{"head": "u4", "tail": "wedding"}, {"head": "u3", "tail": "wedding"}],
        run_id=second,
    )
    store.finish_run(second)
    assert store.version().seq == 2
    counts = store.delete_run(second)
    assert counts == {"edges_deleted": 2, "nodes_deleted": 1, "nodes_kept": 0}
    stats = store.stats()
    assert stats["nodes"]["User"] == 3 and stats["total_edges"] == 6
    assert stats["version"]["run_id"] == first
    with pytest.raises(InputError, match="unknown run"):
        store.delete_run(second)


def test_failed_run_is_marked_and_excluded_from_version(store: GraphStore) -> None:
    first = seed(store)
    with pytest.raises(RuntimeError), store.run_context("crashy") as run_id:
        store.upsert_nodes("User", [{"id": "u8"}], run_id=run_id)
        raise RuntimeError("boom")
    runs = store.runs()
    assert dict(zip(runs["id"], runs["status"], strict=True))[run_id] == "failed"
    assert store.version().run_id == first


def test_timestamps_round_trip(store: GraphStore) -> None:
    seed(store)
    run_id = store.start_run("ts")
    store.upsert_nodes("Query", [{"id": "q1", "text": "ivory dress"}], run_id=run_id)
    store.upsert_edges(
        "SEARCHED", [{"head": "u1", "tail": "q1", "ts": "2026-03-04T05:06:07+01:00"}], run_id=run_id
    )
    got = store.run("MATCH (:User)-[e:SEARCHED]->(:Query) RETURN e.ts AS ts")["ts"][0]
    assert pd.Timestamp(got) == pd.Timestamp(datetime(2026, 3, 4, 4, 6, 7))


def test_an_older_embedded_store_is_migrated_additively(tmp_path: Path) -> None:
    """A schema-v1 store (no mined-edge provenance columns) opens, gains them, and keeps its data."""
    import json

    from graph.store import StoreConfig, open_store

    config = StoreConfig(backend="embedded", path=tmp_path / "old")
    store = open_store(config, create=True)
    with store.run_context("seed") as run_id:
        store.upsert_nodes("Intent", [{"id": "i1", "name": "moving house"}], run_id=run_id)
        store.upsert_nodes("Category", [{"id": "c1", "name": "Boxes"}], run_id=run_id)
        store.upsert_edges(
            "NEEDS", [{"head": "i1", "tail": "c1", "confidence": 0.5}], run_id=run_id, tail="Category"
        )
    for column in ("vote", "relatedness", "evidence"):
        store.run(f"ALTER TABLE NEEDS DROP {column}", read_only=False)
    store.close()
    marker = tmp_path / "old" / "mokg.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "schema_version": "1"}))
    store = open_store(config)
    edges = store.edge_table(("Intent", "NEEDS", "Category"), ["confidence", "vote", "evidence"])
    assert edges[["head", "tail", "confidence"]].values.tolist() == [["i1", "c1", 0.5]]
    assert edges["vote"].isna().all()
    assert json.loads(marker.read_text())["schema_version"] == "3"
    store.close()


def test_a_v2_embedded_store_gains_documents_and_chunk_mentions(tmp_path: Path) -> None:
    """Schema v3 (documents): a v2 store gains Document/Chunk tables, the chunk endpoints of
    MENTIONS and the ``spans`` column of mined relations, and keeps its data."""
    import json

    from graph.store import StoreConfig, open_store

    config = StoreConfig(backend="embedded", path=tmp_path / "v2")
    store = open_store(config, create=True)
    with store.run_context("seed") as run_id:
        store.upsert_nodes("Intent", [{"id": "i1", "name": "moving house"}], run_id=run_id)
    for item in ("Intent", "Category", "Brand", "Item", "Concept"):
        store.run(f"ALTER TABLE MENTIONS DROP FROM Chunk TO {item}", read_only=False)
    for table in ("HAS_CHUNK", "DESCRIBES", "Chunk", "Document"):
        store.run(f"DROP TABLE {table}", read_only=False)
    store.run("ALTER TABLE NEEDS DROP spans", read_only=False)
    store.close()
    marker = tmp_path / "v2" / "mokg.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "schema_version": "2"}))
    store = open_store(config)
    with store.run_context("docs") as run_id:
        store.upsert_nodes("Document", [{"id": "d1", "text": "Moving house? Get boxes."}], run_id=run_id)
        chunk = {"id": "d1#0", "text": "Moving house?", "document": "d1"}
        store.upsert_nodes("Chunk", [chunk], run_id=run_id)
        store.upsert_edges("HAS_CHUNK", [{"head": "d1", "tail": "d1#0"}], run_id=run_id)
        mention = {"head": "d1#0", "tail": "i1", "spans": "[[0, 12]]", "surface": "Moving house"}
        store.upsert_edges("MENTIONS", [mention], run_id=run_id, head="Chunk", tail="Intent")
    assert store.node_table("Intent", ["name"])["name"].tolist() == ["moving house"]
    assert store.edge_table(("Chunk", "MENTIONS", "Intent"), ["spans"])["spans"].tolist() == ["[[0, 12]]"]
    assert "spans" in store.edge_table(("Intent", "NEEDS", "Category"), ["spans"]).columns
    assert json.loads(marker.read_text())["schema_version"] == "3"
    store.close()
