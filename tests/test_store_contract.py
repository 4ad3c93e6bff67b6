"""The GraphStore contract, run on every backend (embedded LadybugDB; Neo4j dialect over Bolt)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from graph.backends.embedded import EmbeddedStore
from graph.errors import InputError, QueryError, SchemaError
from graph.schema import SCHEMA
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
    args |= {"user_thoughts": {"user_id": "u1"}, "forget_user_thoughts": {"user_id": "nobody"}}
    args["forget_thought_changes"] = {"keys": ['"no-such-thought"']}
    args["chunk_passages"] = {"chunk_ids": ["no-such-chunk"]}
    lib = load_library()
    results = {
        name: store.run(name, args.get(name, {}), read_only=not lib.get(name).writes) for name in lib.names()
    }
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
    assert counts == {
        "edges_deleted": 2,
        "nodes_deleted": 1,
        "nodes_kept": 0,
        "values_restored": 0,
        "restore_conflicts": 0,
        "declarations_removed": 0,
        "declarations_kept": 0,
    }
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


def _ddl(store: GraphStore, statement: str) -> None:
    """Make an older store's schema (DDL on the embedded connection itself, not a run)."""
    assert isinstance(store, EmbeddedStore)
    store._exec(statement)


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
        _ddl(store, f"ALTER TABLE NEEDS DROP {column}")
    store.close()
    marker = tmp_path / "old" / "mokg.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "schema_version": "1"}))
    store = open_store(config)
    edges = store.edge_table(("Intent", "NEEDS", "Category"), ["confidence", "vote", "evidence"])
    assert edges[["head", "tail", "confidence"]].values.tolist() == [["i1", "c1", 0.5]]
    assert edges["vote"].isna().all()
    assert json.loads(marker.read_text())["schema_version"] == SCHEMA.version
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
        _ddl(store, f"ALTER TABLE MENTIONS DROP FROM Chunk TO {item}")
    for table in ("HAS_CHUNK", "DESCRIBES", "Chunk", "Document"):
        _ddl(store, f"DROP TABLE {table}")
    _ddl(store, "ALTER TABLE NEEDS DROP spans")
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
    assert json.loads(marker.read_text())["schema_version"] == SCHEMA.version
    store.close()


# ---- writes never clobber; a rollback restores what a run changed ------------------------------


def _needs(store: GraphStore, columns: list[str]) -> dict[str, Any]:
    edges = store.edge_table(("Intent", "NEEDS", "Category"), columns)
    return dict(edges.iloc[0])


def test_a_load_that_keeps_never_replaces_stored_values(store: GraphStore) -> None:
    """An edge and nodes another run wrote keep their values; only missing properties are filled."""
    seed(store)
    mine = store.start_run("mine")
    store.upsert_edges(
        "NEEDS",
        [{"head": "wedding", "tail": "c_dress", "confidence": 0.95, "vote": 0.8}],
        run_id=mine,
        tail="Category",
    )
    load = store.start_run("load")
    report = store.bulk_load(
        run_id=load,
        nodes={"Intent": pd.DataFrame({"id": ["wedding", "moving"], "name": ["wedding", "moving"]})},
        edges={
            ("Intent", "NEEDS", "Category"): pd.DataFrame(
                {"head": ["wedding"], "tail": ["c_dress"], "confidence": [0.2], "relatedness": [0.5]}
            )
        },
        keep={"Intent", ("Intent", "NEEDS", "Category")},
    )
    got = _needs(store, ["confidence", "vote", "relatedness", "source"])
    assert (got["confidence"], got["vote"], got["relatedness"]) == (0.95, 0.8, 0.5)
    names = store.node_table("Intent", ["name"]).set_index("id")["name"]
    assert names["wedding"] == "wedding preparation" and names["moving"] == "moving"
    assert report.edges["(Intent)-[:NEEDS]->(Category)"].kept == 1
    assert report.nodes["Intent"].created == 1 and report.nodes["Intent"].kept == 1
    store.delete_run(load)
    assert pd.isna(_needs(store, ["relatedness"])["relatedness"])


def test_delete_run_restores_the_values_it_changed(store: GraphStore) -> None:
    seed(store)
    mine = store.start_run("mine")
    store.upsert_edges(
        "NEEDS",
        [{"head": "wedding", "tail": "c_dress", "confidence": 0.95, "vote": 0.8, "source": "mine"}],
        run_id=mine,
        tail="Category",
    )
    store.finish_run(mine)
    before = snapshot(store)
    load = store.start_run("load")
    store.upsert_nodes("Item", [{"id": "i1", "name": "i1", "title": "Gown"}], run_id=load)
    store.upsert_edges(
        "NEEDS",
        [{"head": "wedding", "tail": "c_dress", "confidence": 0.2, "source": "triples:t.csv"}],
        run_id=load,
        tail="Category",
    )
    store.upsert_nodes("User", [{"id": "u9", "name": "new"}], run_id=load)
    store.finish_run(load)
    assert _needs(store, ["confidence", "source"]) == {
        "head": "wedding",
        "tail": "c_dress",
        "confidence": 0.2,
        "source": "triples:t.csv",
    }
    counts = store.delete_run(load)
    assert counts["values_restored"] == 4 and counts["restore_conflicts"] == 0
    assert counts["nodes_deleted"] == 1
    assert_same(before, snapshot(store))  # the name, the title (it had none) and the provenance
    assert store.run("MATCH (c:Change) WHERE c.run_id = $r RETURN c.id", {"r": load}).empty


def test_a_restore_keeps_values_written_since_and_counts_them(store: GraphStore) -> None:
    seed(store)
    first = store.start_run("first")
    store.upsert_nodes("Item", [{"id": "i1", "name": "Gown", "price": 100.0}], run_id=first)
    store.upsert_nodes("Item", [{"id": "i1", "price": 120.0}], run_id=first)  # merges: first before wins
    later = store.start_run("later")
    store.upsert_nodes("Item", [{"id": "i1", "name": "Gown II"}], run_id=later)
    counts = store.delete_run(first)
    assert (counts["values_restored"], counts["restore_conflicts"]) == (1, 1)
    item = store.node_table("Item", ["name", "price"]).iloc[0]
    assert (item["name"], item["price"]) == ("Gown II", 899.0)


# ---- removed edges: deleting the removing run puts them back exactly -----------------------------

INTENT_KEY = ("User", "HAS_INTENT", "Intent")


def _intent_edges(store: GraphStore) -> pd.DataFrame:
    columns = [p.name for p in SCHEMA.rel("HAS_INTENT").props]
    return store.edge_table(INTENT_KEY, columns).sort_values(["head", "tail"]).reset_index(drop=True)


def test_a_removed_edge_comes_back_exactly_when_its_run_is_deleted(store: GraphStore) -> None:
    seed(store)
    before, whole = _intent_edges(store), snapshot(store)
    with store.run_context("review") as run_id:
        assert store.remove_edges(INTENT_KEY, [("u1", "wedding"), ("u1", "wedding")], run_id=run_id) == 1
    assert _intent_edges(store)[["head", "tail"]].values.tolist() == [["u2", "honeymoon"]]
    sub = store.subgraph(seeds={"User": ["u1"]}, hops=1)
    assert ("User", "HAS_INTENT", "Intent") not in sub.edges
    assert store.version().run_id == run_id
    counts = store.delete_run(run_id)
    assert (counts["values_restored"], counts["restore_conflicts"], counts["edges_deleted"]) == (
        len(SCHEMA.rel("HAS_INTENT").props),
        0,
        0,
    )
    pd.testing.assert_frame_equal(_intent_edges(store), before)  # run_id, created_at, source too
    assert_same(whole, snapshot(store))
    assert store.run("MATCH (c:Change) WHERE c.run_id = $r RETURN c.id", {"r": run_id}).empty


def test_an_edge_changed_removed_and_written_again_by_one_run_comes_back_as_it_was(
    store: GraphStore,
) -> None:
    seed(store)
    before = _intent_edges(store)
    with store.run_context("review") as run_id:
        store.upsert_edges(
            "HAS_INTENT", [{"head": "u1", "tail": "wedding", "confidence": 0.1}], run_id=run_id
        )
        assert store.remove_edges(INTENT_KEY, [("u1", "wedding")], run_id=run_id) == 1
        store.upsert_edges(
            "HAS_INTENT", [{"head": "u1", "tail": "wedding", "confidence": 0.2}], run_id=run_id
        )
        assert store.remove_edges(INTENT_KEY, [("u1", "wedding")], run_id=run_id) == 1
        store.upsert_edges(
            "HAS_INTENT", [{"head": "u1", "tail": "wedding", "confidence": 0.3}], run_id=run_id
        )
    assert _intent_edges(store)["confidence"].tolist() == [0.3, 0.4]
    assert store.delete_run(run_id)["restore_conflicts"] == 0
    pd.testing.assert_frame_equal(_intent_edges(store), before)


def test_a_removed_edge_written_since_by_another_run_is_kept_and_counted(store: GraphStore) -> None:
    seed(store)
    removal = store.start_run("review")
    store.remove_edges(INTENT_KEY, [("u1", "wedding")], run_id=removal)
    store.finish_run(removal)
    with store.run_context("later") as later:
        store.upsert_edges("HAS_INTENT", [{"head": "u1", "tail": "wedding", "confidence": 0.3}], run_id=later)
    counts = store.delete_run(removal)
    assert (counts["values_restored"], counts["restore_conflicts"]) == (0, 1)
    edge = _intent_edges(store).iloc[0]
    assert (edge["head"], edge["confidence"], edge["run_id"]) == ("u1", 0.3, later)


def test_removing_an_edge_that_is_not_there_is_a_no_op(store: GraphStore) -> None:
    seed(store)
    before = _intent_edges(store)
    with store.run_context("review") as run_id:
        assert store.remove_edges(INTENT_KEY, [("u1", "honeymoon"), ("u9", "wedding")], run_id=run_id) == 0
        assert store.remove_edges(INTENT_KEY, [], run_id=run_id) == 0
    pd.testing.assert_frame_equal(_intent_edges(store), before)
    assert store.run("MATCH (c:Change) WHERE c.run_id = $r RETURN c.id", {"r": run_id}).empty


# ---- ad-hoc writes are runs; reads are read-only by the database's own means --------------------


def test_an_ad_hoc_write_is_a_run_that_moves_the_version(store: GraphStore) -> None:
    seed(store)
    version = store.version()
    store.run("CREATE (:User {id: 'u7', name: 'Ad hoc'})", read_only=False)
    after = store.version()
    assert after.seq == version.seq + 1 and after.run_id is not None and after.run_id != version.run_id
    run = store.runs().set_index("id").loc[after.run_id]
    assert run["kind"] == "cypher" and run["status"] == "done"
    assert "cannot undo" in run["note"] and "CREATE (:User" in run["note"]
    user = store.run("MATCH (u:User {id: 'u7'}) RETURN u.run_id AS r, u.source AS s")
    assert (user["r"][0], user["s"][0]) == (after.run_id, after.run_id)
    store.delete_run(str(after.run_id))
    assert store.run("MATCH (u:User {id: 'u7'}) RETURN u.id").empty


# (READ_CSV_SERIAL / READ_PARQUET crashed the process: tests/test_cypher_fuzz.py runs them in one.)
ESCAPES = [
    "RETURN 1; COMMIT; CREATE (:User {id: 'x'})",
    "MATCH (u:User) SET u.name = 'x'",
    "MATCH (u:User) DETACH DELETE u",
    "CREATE (:User {id: 'x'})",
    "COMMIT",
    "CALL show_tables() RETURN *; CALL timeout=0",
    "LOAD FROM '/etc/passwd' (file_format='csv', header=false) RETURN *",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "COPY (MATCH (u:User) RETURN u.id) TO '/tmp/mokg-escape.csv'",
    "EXPORT DATABASE '/tmp/mokg-escape-db'",
    "CALL timeout=0",
    "CALL apoc.load.json('file:///etc/passwd') YIELD value RETURN value",
]


@pytest.mark.parametrize("query", ESCAPES)
def test_a_read_cannot_write_or_touch_files(store: GraphStore, query: str) -> None:
    from tests.support.dump import canonical_dump

    seed(store)
    before, version = canonical_dump(store), store.version()
    with pytest.raises(QueryError):
        store.run(query)
    assert canonical_dump(store) == before and store.version() == version
    assert not Path("/tmp/mokg-escape.csv").exists() and not Path("/tmp/mokg-escape-db").exists()


def test_the_reported_escape_changes_no_schema(store: GraphStore) -> None:
    """`RETURN 1; COMMIT; COMMENT ON TABLE …` committed a schema change from a read-only call."""
    seed(store)
    with pytest.raises(QueryError):
        store.run("RETURN 1; COMMIT; COMMENT ON TABLE User IS 'x'")
    if store.dialect == "embedded":
        tables = store.run("CALL show_tables() RETURN *")
        assert set(tables["comment"]) == {""}


def test_catalogue_calls_still_run(store: GraphStore) -> None:
    seed(store)
    query = "CALL show_tables() RETURN *" if store.dialect == "embedded" else "CALL db.labels()"
    assert len(store.run(query)) > 0


# ---- limits ---------------------------------------------------------------------------------


def test_limits_come_from_the_environment_and_bad_values_are_refused() -> None:
    from graph.errors import StoreError
    from graph.store import StoreConfig

    cfg = StoreConfig.from_env({"MOKG_WAIT": "2.5", "MOKG_MAX_ROWS": "10", "MOKG_QUERY_TIMEOUT": "0"})
    assert (cfg.wait_s, cfg.max_rows, cfg.query_timeout_s) == (2.5, 10, 0)
    with pytest.raises(StoreError, match="MOKG_MAX_ROWS must be a number"):
        StoreConfig.from_env({"MOKG_MAX_ROWS": "lots"})
    with pytest.raises(StoreError, match="max_rows must be a number >= 0"):
        StoreConfig(max_rows=-1)


def _limited(store: GraphStore, **limits: Any) -> GraphStore:
    from dataclasses import replace

    store.config = replace(store.config, **limits)
    return store


def test_a_result_over_the_row_cap_is_refused_naming_the_limit(store: GraphStore) -> None:
    seed(store)
    small = _limited(store, max_rows=3)
    assert len(small.run("MATCH (u:User) RETURN u.id")) == 3
    with pytest.raises(QueryError, match="max_rows"):
        small.run("MATCH (n) RETURN n.id")
    with pytest.raises(QueryError, match="max_rows"):
        small.run("label_counts")


def test_query_text_is_bounded_before_the_parser(store: GraphStore) -> None:
    seed(store)
    small = _limited(store, max_query_chars=200, max_query_depth=20)
    with pytest.raises(QueryError, match="max_query_chars"):
        small.run("RETURN " + "+".join(["1"] * 150))
    with pytest.raises(QueryError, match="max_query_depth"):
        small.run("RETURN " + "(" * 30 + "1" + ")" * 30)
    assert small.run("RETURN '((((((((((((((((((((((((((((((' AS x")["x"][0].startswith("(((")


def test_a_slow_query_stops_at_the_timeout_naming_the_limit(store: GraphStore) -> None:
    if store.backend == "neo4j" and "ArcadeDB" in store._driver.get_server_info().agent:  # type: ignore[attr-defined]
        pytest.skip("ArcadeDB's Bolt plugin ignores transaction timeouts (Neo4j honours them)")
    run_id = store.start_run("clique")
    ids = [f"i{k}" for k in range(20)]
    store.upsert_nodes("Intent", [{"id": i} for i in ids], run_id=run_id)
    pairs = [{"head": a, "tail": b} for a in ids for b in ids if a < b]
    store.upsert_edges("CO_OCCURS_WITH", pairs, run_id=run_id)
    quick = _limited(store, query_timeout_s=0.1)
    with pytest.raises(QueryError, match=r"timeout of 0\.1 s"):
        quick.run("MATCH p = (a:Intent)-[:CO_OCCURS_WITH*1..10]-(b:Intent) RETURN count(*) AS c")
    assert quick.run("MATCH (a:Intent) RETURN count(*) AS c")["c"][0] == 20
    with pytest.raises(QueryError, match="timeout"):  # a k-hop export from a seed, hops=5
        quick.subgraph(seeds={"Intent": ["i0"]}, hops=5)


# ---- interrupted runs ---------------------------------------------------------------------------


def _writer_dies(store: GraphStore, run_id: str) -> GraphStore:
    """What a kill -9 of the run's writer leaves: embedded, the next process to open the store;
    a server, a Run whose pid is a process that has ended."""
    import subprocess
    import sys

    from graph.base import BaseStore
    from graph.store import open_store

    if store.backend == "embedded":
        store.close()
        return open_store(store.config)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    pid = int(done.stdout)
    base = store
    assert isinstance(base, BaseStore)
    base._live_runs.discard(run_id)
    base._in_write_tx(lambda ex: ex("MATCH (r:Run {id: $id}) SET r.pid = $pid", {"id": run_id, "pid": pid}))
    return store


def test_a_run_whose_writer_is_gone_is_listed_as_interrupted(
    store: GraphStore, caplog: pytest.LogCaptureFixture
) -> None:
    seed(store)
    run_id = store.start_run("killed")
    store.upsert_nodes("User", [{"id": "u9"}], run_id=run_id)
    assert dict(zip(store.runs()["id"], store.runs()["status"], strict=True))[run_id] == "running"
    after = _writer_dies(store, run_id)
    try:
        runs = after.runs()
        assert dict(zip(runs["id"], runs["status"], strict=True))[run_id] == "interrupted"
        with caplog.at_level("WARNING", logger="mokg.store"):
            after.start_run("next")
        lines = [r.getMessage() for r in caplog.records if r.name == "mokg.store"]
        assert len(lines) == 1 and run_id in lines[0] and "mokg runs delete" in lines[0]
        assert "\n" not in lines[0]
    finally:
        if after is not store:
            after.close()


def test_a_schema_v3_embedded_store_gains_before_images(tmp_path: Path) -> None:
    """Schema v4: a v3 store (no Change table, no writer columns on Run) is migrated, and a run
    that changes its data can be rolled back."""
    import json

    from graph.store import StoreConfig, open_store

    config = StoreConfig(backend="embedded", path=tmp_path / "v3")
    store = open_store(config, create=True)
    with store.run_context("seed") as run_id:
        store.upsert_nodes("User", [{"id": "u1", "name": "Ann"}], run_id=run_id)
    for ddl in ("DROP TABLE Change", "ALTER TABLE Run DROP host", "ALTER TABLE Run DROP pid"):
        _ddl(store, ddl)
    store.close()
    marker = tmp_path / "v3" / "mokg.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "schema_version": "3"}))
    store = open_store(config)
    with store.run_context("rename") as run_id:
        store.upsert_nodes("User", [{"id": "u1", "name": "Anna"}], run_id=run_id)
    assert store.delete_run(run_id)["values_restored"] == 1
    assert store.node_table("User", ["name"])["name"].tolist() == ["Ann"]
    assert json.loads(marker.read_text())["schema_version"] == SCHEMA.version
    store.close()


# ---- relation types declared in the store (an external KG) ------------------------------------

ACTOR = "FILM_ACTOR"


def declare_kg(store: GraphStore) -> str:
    """A run that declares FILM_ACTOR (Entity -> Entity) and loads a tiny KG linked to item i1."""
    from graph.schema import external_relation

    rel = external_relation(ACTOR, [("Entity", "Entity")], origin="film.film.actor")
    entities = pd.DataFrame({"id": ["fb:toy", "fb:hanks"], "name": ["Toy Story", "Tom Hanks"]})
    with store.run_context("kg") as run_id:
        store.bulk_load(
            run_id=run_id,
            nodes={"Entity": entities},
            edges={
                ACTOR: pd.DataFrame({"head": ["fb:toy"], "tail": ["fb:hanks"], "confidence": [0.9]}),
                "SAME_AS": pd.DataFrame({"head": ["i1"], "tail": ["fb:toy"]}),
            },
            relations=[rel],
        )
    return run_id


def _reopened(store: GraphStore) -> GraphStore:
    """The same store as a fresh process sees it (embedded: closed and opened again)."""
    from graph.store import open_store

    if store.backend == "embedded":
        store.close()
    return open_store(store.config)


def test_declared_types_are_written_read_queried_and_known_to_a_fresh_process(store: GraphStore) -> None:
    seed(store)
    before = store.version().schema_version
    declare_kg(store)
    assert store.schema.rel(ACTOR).external and store.schema.rel(ACTOR).origin == "film.film.actor"
    assert ACTOR not in {r.name for r in store.schema.mined_relations()}
    assert before == SCHEMA.version and store.version().schema_version.startswith(f"{SCHEMA.version}+ext.")
    edges = store.edge_table(("Entity", ACTOR, "Entity"), ["confidence", "source"])
    assert edges[["head", "tail", "confidence"]].values.tolist() == [["fb:toy", "fb:hanks", 0.9]]
    counts = store.run("relation_counts")
    assert dict(zip(counts["relation"], counts["count"], strict=True))[ACTOR] == 1
    top = store.run("top_relations", {"rel_type": ACTOR})
    assert top[["head", "tail"]].values.tolist() == [["fb:toy", "fb:hanks"]]
    assert store.stats()["edges"][f"(Entity)-[:{ACTOR}]->(Entity)"] == 1
    fresh = _reopened(store)
    try:
        assert fresh.schema.rel(ACTOR).endpoints == (("Entity", "Entity"),)
        assert fresh.version().schema_version == store.schema.version
        with fresh.run_context("more") as run_id:
            fresh.upsert_nodes("Entity", [{"id": "fb:heat"}], run_id=run_id)
            fresh.upsert_edges(ACTOR, [{"head": "fb:heat", "tail": "fb:hanks"}], run_id=run_id)
        assert len(fresh.edge_table(("Entity", ACTOR, "Entity"))) == 2
    finally:
        if fresh is not store:
            fresh.close()


def test_declared_types_are_exported_to_subgraphs_parquet_and_rdf(store: GraphStore, tmp_path: Path) -> None:
    from graph.export import read_parquet, to_rdf, write_parquet
    from graph.export.rdf import MOKG_IRI

    seed(store)
    declare_kg(store)
    key = ("Entity", ACTOR, "Entity")
    sub = store.subgraph()
    assert sub.edges[key][["head", "tail"]].values.tolist() == [["fb:toy", "fb:hanks"]]
    assert ("Item", "SAME_AS", "Entity") in sub.edges
    near = store.subgraph(seeds={"Item": ["i1"]}, hops=2, rel_types=["SAME_AS", ACTOR])
    assert sorted(near.nodes["Entity"]["id"]) == ["fb:hanks", "fb:toy"] and key in near.edges
    write_parquet(sub, tmp_path / "pq")
    back = read_parquet(tmp_path / "pq")
    assert back.edges[key]["confidence"].tolist() == [0.9]
    assert back.version.schema_version == store.schema.version
    turtle = to_rdf(sub)
    assert len(list(turtle.triples((None, __import__("rdflib").URIRef(MOKG_IRI + ACTOR), None)))) == 1


def test_deleting_the_run_that_declared_a_type_removes_it(store: GraphStore) -> None:
    seed(store)
    run_id = declare_kg(store)
    counts = store.delete_run(run_id)
    assert (counts["edges_deleted"], counts["nodes_deleted"]) == (2, 2)
    assert (counts["declarations_removed"], counts["declarations_kept"]) == (1, 0)
    assert ACTOR not in store.schema.rel_types and store.version().schema_version == SCHEMA.version
    assert ACTOR not in set(store.run("relation_counts")["relation"])
    assert not any(ACTOR in k for k in store.stats()["edges"])
    if isinstance(store, EmbeddedStore):  # the rel table is dropped with it
        tables = store._exec("CALL show_tables() RETURN name")
        assert ACTOR not in set(tables["name"])
    declare_kg(store)  # and it can be declared again
    assert store.schema.rel(ACTOR).external


def test_a_declared_type_that_another_runs_edges_use_is_kept(store: GraphStore) -> None:
    seed(store)
    first = declare_kg(store)
    with store.run_context("second") as second:
        store.upsert_nodes("Entity", [{"id": "fb:heat"}], run_id=second)
        store.upsert_edges(ACTOR, [{"head": "fb:heat", "tail": "fb:hanks"}], run_id=second)
    counts = store.delete_run(first)
    assert (counts["declarations_removed"], counts["declarations_kept"]) == (0, 1)
    assert counts["nodes_kept"] == 1  # fb:hanks, which the second run's edge uses
    assert store.schema.rel(ACTOR).external
    assert store.edge_table(("Entity", ACTOR, "Entity"))[["head", "tail"]].values.tolist() == [
        ["fb:heat", "fb:hanks"]
    ]


def test_a_second_endpoint_pair_is_added_and_rolled_back_alone(store: GraphStore) -> None:
    from graph.schema import external_relation

    seed(store)
    declare_kg(store)
    with store.run_context("pair") as run_id:
        store.declare_relations([external_relation(ACTOR, [("Item", "Entity")])], run_id=run_id)
        store.upsert_edges(ACTOR, [{"head": "i1", "tail": "fb:hanks"}], run_id=run_id, head="Item")
    assert store.schema.rel(ACTOR).endpoints == (("Entity", "Entity"), ("Item", "Entity"))
    assert store.schema.rel(ACTOR).origin == "film.film.actor"
    counts = store.delete_run(run_id)
    assert (counts["edges_deleted"], counts["declarations_removed"]) == (1, 1)
    assert store.schema.rel(ACTOR).endpoints == (("Entity", "Entity"),)
    assert len(store.edge_table(("Entity", ACTOR, "Entity"))) == 1


BAD_DECLARATIONS = [
    ("FILM_ACTOR]->() DETACH DELETE (n", [("Entity", "Entity")], "not a safe identifier"),
    ("film.film.actor", [("Entity", "Entity")], "e.g. FILM_FILM_ACTOR"),
    ("MATCH", [("Entity", "Entity")], "is a Cypher keyword"),
    ("BELONGS_TO", [("Entity", "Entity")], "one of the MoKG's own"),
    ("ITEM", [("Entity", "Entity")], "collides with Item"),
    ("GOOD", [("Entity) DETACH DELETE (n", "Entity")], "unknown node label"),
    ("GOOD", [("Run", "Entity")], "system label"),
]


@pytest.mark.parametrize(("name", "pairs", "words"), BAD_DECLARATIONS)
def test_a_bad_declared_name_is_refused_before_any_cypher_is_built(
    store: GraphStore, monkeypatch: pytest.MonkeyPatch, name: str, pairs: list[tuple[str, str]], words: str
) -> None:
    from graph.base import BaseStore
    from graph.schema import RelType

    seed(store)
    run_id = store.start_run("bad")
    before = store.stats()
    built: list[str] = []
    assert isinstance(store, BaseStore)
    original = store._q

    def spy(template: str, **slots: str | int) -> str:
        built.append(original(template, **slots))
        return built[-1]

    monkeypatch.setattr(store, "_q", spy)
    rel = RelType(name, "x", tuple(pairs), external=True)
    with pytest.raises(SchemaError, match=re.escape(words)):
        store.declare_relations([rel], run_id=run_id)
    assert built == []  # refused before any Cypher text was made
    edges = {name: pd.DataFrame({"head": ["a"], "tail": ["b"]})}
    with pytest.raises(SchemaError, match=re.escape(words)):
        store.bulk_load(run_id=run_id, relations=[rel], edges=edges)
    bad = {name, *(label for pair in pairs for label in pair)} - set(SCHEMA.labels)
    used = [t for t in built for b in bad if f":{b}" in t or f"TABLE {b}" in t or f"FROM {b} " in t]
    assert used == []  # only the refresh of the declared types ran
    monkeypatch.undo()
    assert store.stats() == before


def test_a_type_another_process_declared_is_found_when_used(store: GraphStore) -> None:
    """A store object caches its schema; a name it does not know makes it read the declarations again."""
    from graph.store import open_store

    if store.backend == "embedded":
        pytest.skip("one process at a time holds an embedded store")
    seed(store)
    assert ACTOR not in store.schema.rel_types
    with open_store(store.config) as other:
        declare_kg(other)
    assert store.run("top_relations", {"rel_type": ACTOR})["tail"].tolist() == ["fb:hanks"]
    with store.run_context("more") as run_id:
        store.upsert_edges(ACTOR, [{"head": "fb:hanks", "tail": "fb:toy"}], run_id=run_id)
    assert len(store.edge_table(("Entity", ACTOR, "Entity"))) == 2


_THOUGHT_V7 = [p.name for p in SCHEMA.label("Thought").props][6:]  # after id, name, …, created_at, text


def test_a_schema_v4_embedded_store_gains_external_kgs_and_records_the_migration(tmp_path: Path) -> None:
    """Schema v5–v8: a v4 store (no Entity, SAME_AS, DeclaredRelation, Representation; no
    attributes, no rating; Thought with its text only) is migrated additively, keeps its data,
    records the migration in its marker and can load a KG."""
    import json

    from graph.store import StoreConfig, open_store

    config = StoreConfig(backend="embedded", path=tmp_path / "v4")
    store = open_store(config, create=True)
    seed(store)
    for ddl in (
        "DROP TABLE SAME_AS",
        "DROP TABLE Entity",
        "DROP TABLE DeclaredRelation",
        "DROP TABLE Representation",
        "DROP TABLE TableHash",
        "ALTER TABLE User DROP attributes",
        "ALTER TABLE Item DROP attributes",
        "ALTER TABLE INTERACTED DROP rating",
        *(f"ALTER TABLE Thought DROP {name}" for name in _THOUGHT_V7),
    ):
        _ddl(store, ddl)
    store.close()
    marker = tmp_path / "v4" / "mokg.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "schema_version": "4"}))
    with open_store(config) as store:
        declare_kg(store)
        assert store.edge_table(("Item", "SAME_AS", "Entity"))["tail"].tolist() == ["fb:toy"]
        assert store.node_table("User", ["name", "attributes"])["name"].tolist() == ["Ann", "Bo", "Cy"]
        info = json.loads(marker.read_text())
        assert info["schema_version"] == SCHEMA.version == "8"
        assert [(m["from"], m["to"]) for m in info["migrations"]] == [("4", "8")]
        assert store.node_table("Representation").empty  # v6's table, created by the migration
        with store.run_context("memory") as run_id:  # v7's columns, added by the migration
            store.upsert_nodes("Thought", [{"id": "t1", "status": "active", "vector": "AA=="}], run_id=run_id)
        assert store.node_table("Thought", ["status", "vector"]).iloc[0].tolist() == ["t1", "active", "AA=="]


@pytest.mark.parametrize("raises", [False, True])
def test_a_store_in_a_with_block_is_closed_when_the_block_ends(store: GraphStore, raises: bool) -> None:
    """``with open_store(cfg) as store`` gives the store and closes it on exit, also when the block
    raises (and the exception goes on); an embedded store's lock is free again afterwards."""
    from graph.store import open_store

    config = store.config
    if store.backend == "embedded":
        store.close()  # one process holds an embedded store at a time
    opened = open_store(config)
    closes: list[int] = []
    real_close = opened.close

    def close() -> None:
        closes.append(1)
        real_close()

    setattr(opened, "close", close)  # noqa: B010 (spy on this instance only)
    expected = pytest.raises(RuntimeError, match="block failed") if raises else contextlib.nullcontext()
    with expected, opened as entered:
        assert entered is opened
        assert entered.stats()["total_nodes"] == 0
        if raises:
            raise RuntimeError("block failed")
    assert closes == [1]
    if store.backend == "embedded":
        open_store(replace(config, wait_s=0.0)).close()  # the lock was released
