"""The seeded world: determinism, the hidden/visible split, ingestion, and its generative story."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graph.errors import InputError
from graph.store import GraphStore, StoreConfig, open_store
from loaders.ingest import ingest_world
from loaders.world.config import SCALES, world_config
from loaders.world.generate import generate_world
from loaders.world.layout import WorldDir, edge_file
from loaders.world.ontology import load_ontology

TINY = world_config("demo", seed=7, n_users=300, n_items=400, n_campaigns=4, chunk_users=120)


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "w"
    generate_world(TINY, out)
    return out


def test_same_seed_same_bytes_other_seed_other_world(world: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_world(TINY, again)
    assert digest(world) == digest(again)
    other = tmp_path / "other"
    generate_world(
        world_config("demo", seed=8, n_users=300, n_items=400, n_campaigns=4, chunk_users=120), other
    )
    name = "visible/edges/" + edge_file(("User", "INTERACTED", "Item"))
    assert digest(world)[name] != digest(other)[name]


def test_a_world_is_replaced_only_where_a_world_alone_was(world: Path, tmp_path: Path) -> None:
    """Issue 15: `world generate --out` over an existing folder deleted the user's own files."""
    target = tmp_path / "w"
    shutil.copytree(world, target)
    generate_world(TINY, target)  # a world alone: replaced
    assert digest(target) == digest(world) and sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    for mine in ("notes.txt", "visible/mine.parquet"):
        (target / mine).write_text("my own file")
        with pytest.raises(InputError, match=f"refusing to replace .*holds '{mine}'.*not part of a world"):
            generate_world(TINY, target)
        assert (target / mine).read_text() == "my own file"
        (target / mine).unlink()
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("x")
    with pytest.raises(InputError, match="not a world folder"):
        generate_world(TINY, other)
    assert (other / "a.txt").read_text() == "x"


def test_bad_seeds_and_outputs_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--seed must be a non-negative integer, got -1"):
        world_config("demo", seed=-1)
    (tmp_path / "file.txt").write_text("x")
    for out in (tmp_path / "file.txt", tmp_path / "file.txt" / "w"):
        with pytest.raises(InputError, match="file"):
            generate_world(TINY, out)
    assert (tmp_path / "file.txt").read_text() == "x"


def test_scales_cover_demo_to_benchmark() -> None:
    assert SCALES["demo"].n_users == 2_000 and SCALES["demo"].n_items == 1_000
    bench = SCALES["bench"]
    assert bench.n_users >= 1_000_000 and bench.n_users * bench.events_per_user >= 10_000_000


def test_manifest_lists_every_file_with_its_visibility(world: Path) -> None:
    files = WorldDir(world).manifest()["files"]
    on_disk = {str(p.relative_to(world)) for p in world.rglob("*") if p.suffix in (".parquet", ".jsonl")}
    assert set(files) == on_disk
    assert files["visible/documents/documents.jsonl"]["rows"] > 0
    assert {v["visibility"] for v in files.values()} == {"visible", "hidden"}
    assert all(
        k.startswith("hidden/")
        for k in files
        if "conversions" in k or "user_intents" in k or "/kg/" in k or "statements" in k
    )


def _store(tmp_path: Path) -> GraphStore:
    return open_store(StoreConfig(path=tmp_path / "graph"), create=True)


def test_training_inputs_never_need_the_hidden_tables(world: Path, tmp_path: Path) -> None:
    visible_only = tmp_path / "visible_only"
    shutil.copytree(world, visible_only)
    shutil.rmtree(visible_only / "hidden")
    store = _store(tmp_path)
    ingest_world(store, visible_only)
    from loaders.pyg import GraphDataConfig, build_graph_data

    graph = build_graph_data(store, GraphDataConfig(features=False))
    assert graph.data["User", "INTERACTED", "Item"].edge_index.shape[1] > 0
    stats = store.stats()
    hidden_only = ["HAS_INTENT", "NEEDS", "CO_OCCURS_WITH", "PRECEDES", "SERVES"]
    assert not [k for k in stats["edges"] if any(f":{r}]" in k for r in hidden_only)]
    store.close()


def test_ingest_is_idempotent_and_matches_the_files(world: Path, tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = ingest_world(store, world)
    before = store.stats()
    second = ingest_world(store, world)
    after = store.stats()
    assert before["nodes"] | {"Run": 0} == after["nodes"] | {"Run": 0} and before["edges"] == after["edges"]
    assert sum(t.created or 0 for t in second.edges.values()) == 0
    assert sum(t.updated or 0 for t in second.edges.values()) == 0
    assert sum(t.created or 0 for t in first.edges.values()) == after["total_edges"]
    files = WorldDir(world).manifest()["files"]
    assert after["nodes"]["User"] == files["visible/nodes/User.parquet"]["rows"] == TINY.n_users
    assert (
        after["edges"]["(User)-[:INTERACTED]->(Item)"]
        == files["visible/edges/" + edge_file(("User", "INTERACTED", "Item"))]["rows"]
    )
    store.close()


def test_truth_kg_loads_only_when_asked(world: Path, tmp_path: Path) -> None:
    store = _store(tmp_path)
    ingest_world(store, world, with_truth_kg=True)
    needs = store.run("MATCH (:Intent)-[e:NEEDS]->(:Category) RETURN count(e) AS n, min(e.source) AS s")
    assert needs["n"][0] == len(load_ontology().relations_of("NEEDS")) and needs["s"][0] == "world-truth"
    store.close()


def test_a_bad_world_is_refused_and_nothing_is_written(world: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a world directory"):
        ingest_world(_store(tmp_path / "a"), tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(world, broken)
    items = pd.read_parquet(broken / "visible/nodes/Item.parquet")
    items["id"] = items["id"].where(items.index != 5, items["id"].iloc[4])
    items.to_parquet(broken / "visible/nodes/Item.parquet")
    store = _store(tmp_path / "b")
    with pytest.raises(InputError, match=r"visible/nodes/Item\.parquet: Item nodes: duplicate key .* row 5"):
        ingest_world(store, broken)
    assert store.stats()["total_nodes"] == 0


def _visible(world: Path, key: tuple[str, str, str]) -> pd.DataFrame:
    return pd.read_parquet(world / "visible/edges" / edge_file(key))


def _explained(df: pd.DataFrame, needs: dict[str, set[str]]) -> int:
    """Distinct events whose item's leaf a live intent of the user NEEDS."""
    cols = (df["user"], df["item"], df["ts"], df["leaf"], df["intent"])
    return len({(u, i, t) for u, i, t, leaf, intent in zip(*cols, strict=True) if leaf in needs[str(intent)]})


def test_interactions_follow_latent_intents_through_the_ground_truth_graph(world: Path) -> None:
    """Users with a latent episode in the history act on it: apart from the configured noise,
    their events hit a leaf that one of their live intents NEEDS (by the hidden truth)."""
    onto = load_ontology()
    events = pd.read_parquet(world / "visible/events/interactions.parquet")
    leaf = _visible(world, ("Item", "BELONGS_TO", "Category")).set_index("head")["tail"]
    eps = pd.read_parquet(world / "hidden/user_intents.parquet")
    history_end = pd.Timestamp(TINY.start) + pd.Timedelta(days=TINY.span_days)
    engaged = set(eps[(eps["end"] > pd.Timestamp(TINY.start)) & (eps["start"] < history_end)]["user"])
    ev = events[events["user"].isin(engaged)].assign(leaf=lambda d: d["item"].map(leaf))
    needs = {i: set(onto.needs(i)) for i in onto.intents}
    joined = ev.merge(eps, on="user")
    live = joined[(joined["ts"] >= joined["start"]) & (joined["ts"] <= joined["end"])]
    share = _explained(live, needs) / len(ev)
    assert 1 - TINY.noise - 0.05 < share < 1.0  # noise events exist; a few hit a needed leaf by chance
    random_leaf = events.assign(leaf=events["item"].sample(frac=1.0, random_state=0).map(leaf).to_numpy())
    shuffled = random_leaf[random_leaf["user"].isin(engaged)].merge(eps, on="user")
    shuffled = shuffled[(shuffled["ts"] >= shuffled["start"]) & (shuffled["ts"] <= shuffled["end"])]
    baseline = _explained(shuffled, needs) / len(ev)
    assert baseline < share / 2  # the link is real, not an artefact of popular leaves


def test_popularity_is_heavy_tailed_and_the_cold_start_domain_is_sparse(world: Path) -> None:
    events = pd.read_parquet(world / "visible/events/interactions.parquet")
    item_counts = events["item"].value_counts()
    top = item_counts.head(len(item_counts) // 10).sum() / item_counts.sum()
    assert top > 0.3  # the top 10% of items get far more than 10% of events
    by_domain = events["domain"].value_counts(normalize=True)
    assert set(by_domain.index) >= {"ecommerce", "local_services", "travel", "finance", "mini_apps"}
    assert by_domain.get("health", 0.0) < 0.05
    assert by_domain.get("health", 0.0) > 0.0


def test_converters_are_active_in_the_domain_and_had_a_targeted_intent(world: Path) -> None:
    conv = pd.read_parquet(world / "hidden/conversions.parquet")
    windows = pd.read_parquet(world / "hidden/campaign_windows.parquet").set_index("id")
    active = _visible(world, ("User", "ACTIVE_IN", "Domain"))
    eps = pd.read_parquet(world / "hidden/user_intents.parquet")
    assert len(conv) > 0
    for c, group in conv.groupby("campaign"):
        w = windows.loc[c]
        doms = set(active[active["tail"] == w["domain"]]["head"])
        assert set(group["user"]) <= doms
        hit = eps[eps["intent"].isin(w["intents"].split(","))]
        ok = set(hit[(hit["start"] < w["end"]) & (hit["end"] > w["start"])]["user"])
        assert set(group["user"]) <= ok
    camp = pd.read_parquet(world / "visible/nodes/Campaign.parquet").set_index("id")
    sizes = conv.groupby("campaign").size()
    assert camp["budget"].reindex(sizes.index).tolist() == sizes.tolist()


def test_text_and_queries_are_composed_from_the_vocabulary(world: Path) -> None:
    items = pd.read_parquet(world / "visible/nodes/Item.parquet")
    assert items["title"].str.len().min() > 5 and items["description"].str.contains(" by ").all()
    queries = pd.read_parquet(world / "visible/nodes/Query.parquet")
    clicked = _visible(world, ("Query", "CLICKED", "Item"))
    assert len(queries) > 0 and set(clicked["head"]) <= set(queries["id"])
    assert np.all(queries["id"].str.startswith("q_"))


def test_world_sizes_can_be_set_from_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mokg.cli import app

    r = CliRunner().invoke(
        app, ["world", "generate", "--users", "120", "--items", "90", "--out", str(tmp_path / "w")]
    )
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "w" / "world.json").read_text())
    assert manifest["config"]["n_users"] == 120 and manifest["config"]["n_items"] == 90
