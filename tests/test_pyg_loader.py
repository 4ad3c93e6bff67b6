"""Store → HeteroData (loaders/pyg.py) and text features (loaders/features.py) on a tiny real store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from graph.errors import InputError
from graph.store import GraphStore, StoreConfig, open_store
from loaders.features import CountingEncoder, MiniLMEncoder, cached_embeddings, node_text
from loaders.pyg import INTERACTED, GraphData, GraphDataConfig, build_graph_data

# (user, item, day, domain)
INTERACTIONS = [
    ("u1", "i1", 1, "retail"),
    ("u1", "i2", 2, "retail"),
    ("u1", "i4", 3, "travel"),
    ("u1", "i5", 4, "travel"),
    ("u2", "i1", 2, "retail"),
    ("u2", "i3", 5, "retail"),
    ("u3", "i4", 1, "travel"),
    ("u3", "i5", 6, "travel"),
    ("u4", "i2", 3, "retail"),
    ("u4", "i3", 4, "retail"),
    ("u4", "i4", 7, "travel"),
    ("u4", "i1", 8, "retail"),
]
ITEM_DOMAIN = {"i1": "retail", "i2": "retail", "i3": "retail", "i4": "travel", "i5": "travel"}
ITEM_CATEGORY = {"i1": "c_fashion", "i2": "c_fashion", "i3": "c_fashion", "i4": "c_trips", "i5": "c_trips"}
ITEM_BRAND = {"i1": "b_shop", "i2": "b_shop", "i3": "b_shop", "i4": "b_fly", "i5": "b_fly"}


class FakeEncoder:
    """Deterministic 8-d vectors from a hash of the text; counts what it was asked to encode."""

    model_id = "fake-8"
    dim = 8

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim) / 255.0


def build_store(path: Path) -> GraphStore:
    store = open_store(StoreConfig(path=path), create=True)
    run = store.start_run("test")
    store.upsert_nodes("User", [{"id": f"u{k}"} for k in range(1, 5)], run_id=run)
    store.upsert_nodes(
        "Domain", [{"id": "retail", "name": "Retail"}, {"id": "travel", "name": "Travel"}], run_id=run
    )
    items = [{"id": i, "title": f"title of {i}", "description": f"about {i}"} for i in ITEM_DOMAIN]
    store.upsert_nodes("Item", items, run_id=run)
    cats = [("c_root", "Everything"), ("c_fashion", "Fashion"), ("c_trips", "Trips")]
    store.upsert_nodes("Category", [{"id": c, "name": n} for c, n in cats], run_id=run)
    store.upsert_nodes(
        "Brand", [{"id": "b_shop", "name": "Shop"}, {"id": "b_fly", "name": "Fly"}], run_id=run
    )
    edges: dict[str, list[dict[str, Any]]] = {
        "IN_DOMAIN": [{"head": i, "tail": d} for i, d in ITEM_DOMAIN.items()],
        "BELONGS_TO": [{"head": i, "tail": c} for i, c in ITEM_CATEGORY.items()],
        "MADE_BY": [{"head": i, "tail": b} for i, b in ITEM_BRAND.items()],
        "SUBCATEGORY_OF": [{"head": c, "tail": "c_root"} for c in ("c_fashion", "c_trips")],
        "ACTIVE_IN": [{"head": u, "tail": d} for u, d in {(u, d) for u, _, _, d in INTERACTIONS}],
        "INTERACTED": [
            {"head": u, "tail": i, "ts": datetime(2026, 1, day), "domain": d, "kind": "click"}
            for u, i, day, d in INTERACTIONS
        ],
    }
    for rel, rows in edges.items():
        store.upsert_edges(rel, rows, run_id=run, head="Item" if rel in ("IN_DOMAIN", "BELONGS_TO") else None)
    store.finish_run(run)
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    with build_store(tmp_path_factory.mktemp("pyg") / "graph") as s:
        yield s


def build(store: GraphStore, **kw: Any) -> GraphData:
    return build_graph_data(store, GraphDataConfig(**{"features": False, **kw}))


def edges_of(g: GraphData, key: tuple[str, str, str]) -> set[tuple[str, str]]:
    ei = g.data[key].edge_index
    return {(g.id_maps.id(key[0], int(h)), g.id_maps.id(key[2], int(t))) for h, t in ei.t().tolist()}


def node_ids(g: GraphData) -> dict[str, set[str]]:
    return {label: set(ids) for label, ids in g.id_maps.to_id.items() if ids}


def test_counts_and_edges_map_back_to_ids(store: GraphStore) -> None:
    g = build(store)
    assert {t: g.data[t].num_nodes for t in g.data.node_types} == {
        "User": 4,
        "Item": 5,
        "Category": 3,
        "Brand": 2,
    }
    assert edges_of(g, INTERACTED) == {(u, i) for u, i, _, _ in INTERACTIONS}
    assert edges_of(g, ("Item", "BELONGS_TO", "Category")) == set(ITEM_CATEGORY.items())
    assert edges_of(g, ("Item", "MADE_BY", "Brand")) == set(ITEM_BRAND.items())
    assert edges_of(g, ("Category", "SUBCATEGORY_OF", "Category")) == {
        ("c_fashion", "c_root"),
        ("c_trips", "c_root"),
    }
    assert g.data[INTERACTED].edge_attr.shape == (len(INTERACTIONS), 1)
    assert g.graph_version.seq == 1 and g.data.graph_version["seq"] == 1
    assert "x" not in g.data["User"] and g.data.config_hash == g.config.config_hash()


def test_ids_are_sorted_and_stable_across_builds(store: GraphStore) -> None:
    a, b = build(store), build(store)
    assert a.id_maps.to_id == b.id_maps.to_id
    assert all(ids == sorted(ids) for ids in a.id_maps.to_id.values())
    for key in a.data.edge_types:
        assert torch.equal(a.data[key].edge_index, b.data[key].edge_index)


def test_khop_around_one_seed_has_exactly_its_neighbourhood(store: GraphStore) -> None:
    one = build(store, seeds={"User": ["u3"]}, hops=1)
    assert node_ids(one) == {"User": {"u3"}, "Item": {"i4", "i5"}}
    two = build(store, seeds={"User": ["u3"]}, hops=2)
    assert node_ids(two) == {
        "User": {"u1", "u3", "u4"},
        "Item": {"i4", "i5"},
        "Category": {"c_trips"},
        "Brand": {"b_fly"},
    }
    assert edges_of(two, INTERACTED) == {("u1", "i4"), ("u1", "i5"), ("u3", "i4"), ("u3", "i5"), ("u4", "i4")}
    with pytest.raises(InputError, match="seed User ids not in the graph"):
        build(store, seeds={"User": ["nobody"]})


def test_domain_filter_keeps_only_that_domain(store: GraphStore) -> None:
    g = build(store, domain="travel")
    assert edges_of(g, INTERACTED) == {(u, i) for u, i, _, d in INTERACTIONS if d == "travel"}
    assert node_ids(g) == {
        "User": {"u1", "u3", "u4"},
        "Item": {"i4", "i5"},
        "Category": {"c_trips", "c_root"},  # the items' categories and their ancestors
        "Brand": {"b_fly"},
    }
    assert edges_of(g, ("Category", "SUBCATEGORY_OF", "Category")) == {("c_trips", "c_root")}


def test_an_unknown_domain_is_an_error_listing_the_domains(store: GraphStore) -> None:
    """Issue 15: `subgraph --domain nope` wrote an empty graph and exited 0."""
    with pytest.raises(InputError, match=r"unknown domain 'nope'; the store's domains: .*retail, travel"):
        build(store, domain="nope")


def test_reverse_edges_flip_every_type(store: GraphStore) -> None:
    g = build(store, reverse_edges=True)
    for h, r, t in [k for k in g.data.edge_types if not k[1].startswith("rev_")]:
        assert {(b, a) for a, b in edges_of(g, (h, r, t))} == edges_of(g, (t, f"rev_{r}", h))


def test_text_features_with_a_fake_encoder_and_the_cache(store: GraphStore, tmp_path: Path) -> None:
    fake = FakeEncoder()
    cfg = GraphDataConfig(features=True, cache_dir=tmp_path)
    g = build_graph_data(store, cfg, encoder=fake)
    for label, n in (("Item", 5), ("Category", 3), ("Brand", 2)):
        assert g.data[label].x.shape == (n, 8) and g.data[label].x.dtype == torch.float32
    assert "x" not in g.data["User"]
    row = g.id_maps.index("Item", "i4")
    expected = fake.encode(["title of i4. about i4"])[0]
    assert np.allclose(g.data["Item"].x[row].numpy(), expected)
    fake.calls.clear()
    again = build_graph_data(store, cfg, encoder=fake)
    assert fake.calls == [] and torch.equal(again.data["Item"].x, g.data["Item"].x)


def test_cache_encodes_only_new_texts(tmp_path: Path) -> None:
    fake = FakeEncoder()
    first = cached_embeddings(["a", "b", ""], fake, tmp_path)
    assert not first[2].any()  # empty text: zero vector, not encoded
    second = cached_embeddings(["b", "c", "a"], fake, tmp_path)
    assert fake.calls == [["a", "b"], ["c"]]
    assert np.array_equal(second[0], first[1]) and np.array_equal(second[2], first[0])


def test_node_text_per_label() -> None:
    assert node_text("Item", {"name": "Gown", "title": None, "description": "Ivory."}) == "Gown. Ivory"
    assert node_text("Item", {"title": "Ivory gown", "name": "gown"}) == "Ivory gown"
    assert node_text("Query", {"text": "cheap flights"}) == "cheap flights"
    assert node_text("User", {"name": "Ann"}) is None


def test_leave_last_out_masks_and_message_passing_graph(store: GraphStore) -> None:
    g = build(store, split="leave_last_out", reverse_edges=True)
    e = g.data[INTERACTED]
    assert torch.stack([e.train_mask, e.val_mask, e.test_mask]).sum(0).eq(1).all()  # a partition
    pairs = [(g.id_maps.id("User", int(h)), g.id_maps.id("Item", int(t))) for h, t in e.edge_index.t()]
    test = {p for p, m in zip(pairs, e.test_mask.tolist(), strict=True) if m}
    val = {p for p, m in zip(pairs, e.val_mask.tolist(), strict=True) if m}
    assert test == {("u1", "i5"), ("u4", "i1")}  # u2 and u3 have only two interactions
    assert val == {("u1", "i4"), ("u4", "i4")}
    assert torch.equal(e.test_edge_label_index, e.edge_index[:, e.test_mask])
    assert g.data.split_info["name"] == "leave_last_out" and g.data.split_info["test"] == 2
    train_graph = g.message_passing_graph("train")
    assert train_graph[INTERACTED].num_edges == int(e.train_mask.sum())
    assert train_graph["Item", "rev_INTERACTED", "User"].num_edges == int(e.train_mask.sum())
    test_graph = g.message_passing_graph("test")  # (keep a reference: edge stores hold a weakref)
    assert test_graph[INTERACTED].num_edges == int((e.train_mask | e.val_mask).sum())
    assert g.data[INTERACTED].num_edges == len(INTERACTIONS)  # the full graph is untouched


def test_temporal_and_cold_start_splits_on_the_graph(store: GraphStore) -> None:
    t = build(store, split="temporal", val_frac=0.25, test_frac=0.25)
    assert t.split is not None and t.interactions is not None
    ts = t.interactions["ts"]
    assert ts[t.split.test].min() > ts[t.split.train].max()
    c = build(store, split="cold_start", cold_domain="travel", val_frac=0.34, seed=1)
    assert c.split is not None and c.interactions is not None
    e = c.data[INTERACTED]
    domains = c.interactions["domain"].to_numpy()
    assert (domains[(e.val_mask | e.test_mask).numpy()] == "travel").all()
    assert not (domains[e.train_mask.numpy()] == "travel").any()  # every travel user is held out
    with pytest.raises(InputError, match="cold_domain"):
        build(store, split="cold_start")


@pytest.mark.slow
def test_real_minilm_offline(store: GraphStore, tmp_path: Path) -> None:
    encoder = MiniLMEncoder()
    texts = ["wedding dress", "bridal gown", "lawn mower"]
    v = cached_embeddings(texts, encoder, tmp_path)
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])  # normalised: dot = cosine
    counted = CountingEncoder(encoder)
    assert np.array_equal(cached_embeddings(texts, counted, tmp_path), v) and counted.calls == 0
    g = build_graph_data(store, GraphDataConfig(features=True, cache_dir=tmp_path), encoder=encoder)
    assert g.data["Item"].x.shape == (5, 384) and g.data["Category"].x.shape == (3, 384)
