"""RecBole atomic files in (`mokg load recbole DIR`): tiny datasets written here, and ML-100K from
the installed `recbole` wheel (never copied into the repository)."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from graph.errors import InputError, SchemaError
from graph.store import GraphStore, StoreConfig, open_store
from loaders.readers import READERS, RecBoleReader, ingest_dataset
from tests.test_cli import mokg

INTER = """user_id:token\titem_id:token\trating:float\ttimestamp:float
1\t10\t4\t881250949
1\t20\t5\t881250950
2\t10\t3\t881250951
2\t10\t5\t881250960
"""
USER = """user_id:token\tage:token\tgender:token\tscore:float\tvisits:float_seq
1\t24\tM\t0.5\t1 2 3
2\t\tF\t\t
"""
ITEM = """item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tprice:float
10\tToy Story\t1995\tAnimation Comedy\t9.5
20\tHeat\t1995\tAction\t
30\tNo Class\t1996\t\t
"""
KG = """head_id:token\trelation_id:token\ttail_id:token
m.toy\tfilm.film.actor\tm.hanks
m.toy\tfilm.film.genre\tm.animation
m.heat\tfilm.film.actor\tm.pacino
m.toy\tfilm.film.actor\tm.hanks
"""
LINK = """item_id:token\tentity_id:token
10\tm.toy
20\tm.heat
"""
FILES = {"inter": INTER, "user": USER, "item": ITEM, "kg": KG, "link": LINK}


def write_dataset(root: Path, name: str = "tiny", **files: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, text in files.items():
        (folder / f"{name}.{suffix}").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[GraphStore]:
    with open_store(StoreConfig(path=tmp_path / "g"), create=True) as store:
        yield store


def load(store: GraphStore, folder: Path) -> str:
    ds = RecBoleReader().read(folder)
    with store.run_context("load", ds.source) as run_id:
        ingest_dataset(store, ds, run_id)
    return run_id


def test_registered_as_a_reader() -> None:
    assert isinstance(READERS["recbole"], RecBoleReader)


@pytest.mark.parametrize(
    ("origin", "name"),
    [
        ("film.film.actor", "FILM_FILM_ACTOR"),
        ("people.person.place_of_birth", "PEOPLE_PERSON_PLACE_OF_BIRTH"),
        ("/film/film/genre", "FILM_FILM_GENRE"),
        ("3d.model", "R_3D_MODEL"),
        ("in", "IN_REL"),
        ("hasPart", "HASPART"),
    ],
)
def test_source_relation_names_map_to_safe_types_the_same_every_time(origin: str, name: str) -> None:
    from graph.schema import check_relation_name, relation_name

    assert relation_name(origin) == name == check_relation_name(relation_name(origin))


def test_all_five_files_become_users_items_categories_and_a_declared_kg(
    graph: GraphStore, tmp_path: Path
) -> None:
    load(graph, write_dataset(tmp_path, **FILES))
    users = graph.node_table("User", ["attributes"]).set_index("id")["attributes"]
    assert json.loads(users["tiny:u:1"]) == {
        "age": "24",
        "gender": "M",
        "score": 0.5,
        "visits": [1.0, 2.0, 3.0],
    }
    assert json.loads(users["tiny:u:2"]) == {"gender": "F"}
    items = graph.node_table("Item", ["name", "title", "price", "attributes"]).set_index("id")
    assert list(items.loc["tiny:i:10", ["name", "title", "price"]]) == ["Toy Story", "Toy Story", 9.5]
    assert json.loads(str(items.at["tiny:i:30", "attributes"])) == {"release_year": "1996"}
    belongs = graph.edge_table(("Item", "BELONGS_TO", "Category"))
    assert sorted(zip(belongs["head"], belongs["tail"], strict=True)) == [
        ("tiny:i:10", "tiny:class:Animation"),
        ("tiny:i:10", "tiny:class:Comedy"),
        ("tiny:i:20", "tiny:class:Action"),
    ]
    inter = graph.edge_table(("User", "INTERACTED", "Item"), ["rating", "ts", "count", "kind", "domain"])
    row = inter[(inter["head"] == "tiny:u:2") & (inter["tail"] == "tiny:i:10")].iloc[0]
    assert (row["rating"], row["count"], row["kind"], row["domain"]) == (5.0, 2, "rating", "tiny")
    assert pd.Timestamp(row["ts"]) == pd.Timestamp(881250960, unit="s")
    assert set(graph.edge_table(("Item", "IN_DOMAIN", "Domain"))["tail"]) == {"tiny"}
    assert len(graph.edge_table(("User", "ACTIVE_IN", "Domain"))) == 2
    schema = graph.schema
    assert [(r.name, r.origin) for r in schema.external_relations()] == [
        ("FILM_FILM_ACTOR", "film.film.actor"),
        ("FILM_FILM_GENRE", "film.film.genre"),
    ]
    assert schema.mined_relations() == [r for r in schema.rel_types.values() if r.mined and not r.external]
    actor = graph.edge_table(("Entity", "FILM_FILM_ACTOR", "Entity"))
    assert sorted(actor["tail"]) == ["tiny:e:m.hanks", "tiny:e:m.pacino"]
    same = graph.edge_table(("Item", "SAME_AS", "Entity"))
    assert dict(zip(same["head"], same["tail"], strict=True)) == {
        "tiny:i:10": "tiny:e:m.toy",
        "tiny:i:20": "tiny:e:m.heat",
    }
    entities = graph.node_table("Entity", ["external_id"]).set_index("id")["external_id"]
    assert entities["tiny:e:m.hanks"] == "m.hanks" and len(entities) == 5


def test_reloading_is_a_no_op_and_deleting_the_load_removes_it_and_its_types(
    graph: GraphStore, tmp_path: Path
) -> None:
    folder = write_dataset(tmp_path, **FILES)
    first = load(graph, folder)
    before = graph.stats()
    ds = RecBoleReader().read(folder)
    for overwrite in (False, True):
        with graph.run_context("load") as run_id:
            report = ingest_dataset(graph, ds, run_id, overwrite=overwrite)
        tables = [*report.nodes.values(), *report.edges.values()]
        assert sum(t.created or 0 for t in tables) == 0 and sum(t.updated or 0 for t in tables) == 0
    assert graph.stats()["edges"] == before["edges"] and graph.stats()["nodes"]["Entity"] == 5
    counts = graph.delete_run(first)
    assert counts["declarations_removed"] == 2 and counts["declarations_kept"] == 0
    assert graph.stats()["total_nodes"] == 0 and graph.schema.external_relations() == []


def test_domain_and_entity_namespace_options(graph: GraphStore, tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, inter=INTER, link=LINK, kg=KG)
    ds = RecBoleReader(entity_namespace="freebase").read(folder, domain="movies")
    assert set(ds.nodes["Domain"]["id"]) == {"movies"}
    assert set(ds.edges[("User", "INTERACTED", "Item")]["domain"]) == {"movies"}
    assert "freebase:m.toy" in set(ds.nodes["Entity"]["id"])


@pytest.mark.parametrize(
    ("files", "labels", "edges"),
    [
        ({"inter": INTER}, {"User", "Item", "Domain"}, {"INTERACTED", "IN_DOMAIN", "ACTIVE_IN"}),
        ({"inter": INTER, "item": ITEM}, {"User", "Item", "Category", "Domain"}, {"BELONGS_TO"}),
        ({"user": USER}, {"User", "Domain"}, {"ACTIVE_IN"}),
        ({"link": LINK}, {"Item", "Entity", "Domain"}, {"SAME_AS", "IN_DOMAIN"}),
    ],
)
def test_any_subset_that_makes_sense_loads(
    tmp_path: Path, files: dict[str, str], labels: set[str], edges: set[str]
) -> None:
    ds = RecBoleReader().read(write_dataset(tmp_path, **files))
    assert set(ds.nodes) == labels
    assert edges <= {r for _, r, _ in ds.edges}


def test_an_interaction_file_without_ratings_or_times(tmp_path: Path) -> None:
    ds = RecBoleReader().read(write_dataset(tmp_path, inter="user_id:token\titem_id:token\n1\t2\n1\t2\n"))
    edge = ds.edges[("User", "INTERACTED", "Item")]
    assert edge[["kind", "count"]].values.tolist() == [["interaction", 2]]
    assert edge["ts"].isna().all()


@pytest.mark.parametrize(
    ("files", "words"),
    [
        (
            {"inter": "user_id:token\titem_id:token\trating:float\n1\t2\tfour\n"},
            "data row 1 (line 2), column 'rating:float': 'four' is not a number",
        ),
        (
            {"inter": "user_id:token\titem_id:token\trating:float\n1\t2\t4\n1\t3\tinf\n"},
            "data row 2 (line 3), column 'rating:float': 'inf' is not a finite",
        ),
        (
            {"inter": "user_id:token\titem_id\n1\t2\n"},
            "header (line 1), column 'item_id': not a typed RecBole column",
        ),
        ({"inter": "user_id:token\titem_id:int\n1\t2\n"}, "column 'item_id:int': not a typed RecBole column"),
        ({"inter": "user:token\titem_id:token\n1\t2\n"}, "column 'user_id:token': missing required column"),
        ({"inter": "user_id:float\titem_id:token\n1\t2\n"}, "column 'user_id:float': must be of type token"),
        (
            {"inter": "user_id:token\titem_id:token\n1\t\n"},
            "data row 1 (line 2), column 'item_id:token': is missing or empty",
        ),
        (
            {"inter": "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t9999999999999999\n"},
            "column 'timestamp:float'",
        ),
        ({"inter": "user_id:token\titem_id:token\n"}, "no data rows"),
        (
            {"item": "item_id:token\tx:float_seq\n1\t1 two 3\n"},
            "data row 1 (line 2), column 'x:float_seq': '1 two 3' is not a list",
        ),
        (
            {"item": "item_id:token\tx:token\n1\ta\n1\tb\n"},
            "data row 2 (line 3), column 'item_id:token': '1' appears again with other values",
        ),
        ({"user": "user_id:token\tage:token\tage:float\n1\t2\t3\n"}, "the field 'age' appears twice"),
        ({"kg": KG}, ".kg needs"),
        (
            {"kg": KG.replace("film.film.genre", "belongs_to"), "link": LINK},
            "data row 2 (line 3), column 'relation_id:token': 'belongs_to': relation type BELONGS_TO "
            "is one of the MoKG's own",
        ),
        (
            {"kg": KG.replace("film.film.genre", "film_film.actor"), "link": LINK},
            "'film_film.actor': 'film_film.actor' and 'film.film.actor' both map to the type FILM_FILM_ACTOR",
        ),
        (
            {"kg": KG.replace("film.film.genre", "..."), "link": LINK},
            "'...': relation '...' has no letters or digits",
        ),
        (
            {"kg": KG.replace("film.film.genre", "user"), "link": LINK},
            "relation type USER collides with User",
        ),
    ],
)
def test_bad_files_are_refused_naming_file_row_and_column(
    tmp_path: Path, files: dict[str, str], words: str
) -> None:
    folder = write_dataset(tmp_path, **files)
    with pytest.raises(InputError) as caught:
        RecBoleReader().read(folder)
    message = str(caught.value)
    assert words in message and "\n" not in message
    assert str(folder / "tiny") in message or str(folder) in message


def test_a_folder_that_holds_no_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        RecBoleReader().read(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "ratings.inter").write_text(INTER)
    with pytest.raises(InputError, match=r"no RecBole atomic file \(other.inter, .*it holds ratings.inter"):
        RecBoleReader().read(tmp_path / "other")


def test_non_utf8_bytes_are_one_line_naming_the_line(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, inter=INTER)
    (folder / "tiny.inter").write_bytes(INTER.encode() + b"3\t\xff\t1\t881250949\n")
    with pytest.raises(InputError, match=r"tiny.inter: line 6: byte 0xff .* is not UTF-8"):
        RecBoleReader().read(folder)


def test_a_kg_type_the_store_declared_by_hand_with_another_origin_is_refused(
    graph: GraphStore, tmp_path: Path
) -> None:
    from graph.schema import external_relation

    with graph.run_context("schema") as run_id:
        rel = external_relation("FILM_FILM_ACTOR", [("Entity", "Entity")], origin="film.actor.film_film")
        graph.declare_relations([rel], run_id=run_id)
    before = graph.stats()
    with pytest.raises(SchemaError, match=r"recbole:tiny: .*both map to the type FILM_FILM_ACTOR"):
        load(graph, write_dataset(tmp_path, **FILES))
    assert graph.stats()["nodes"] == {**before["nodes"], "Run": before["nodes"]["Run"] + 1}


def test_cli_loads_lists_declared_types_and_refuses_a_bad_name(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, **FILES)
    store = ["--path", str(tmp_path / "g")]
    done = mokg(*store, "load", "recbole", str(folder), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "from recbole:tiny" in done.stdout
    listed = mokg(*store, "schema", "list", "--external", "--format", "json", cwd=tmp_path)
    rows = json.loads(listed.stdout)
    assert [(r["relation"], r["origin"], r["kind"]) for r in rows] == [
        ("FILM_FILM_ACTOR", "film.film.actor", "external"),
        ("FILM_FILM_GENRE", "film.film.genre", "external"),
    ]
    assert all(r["declared_by"].startswith("load-") for r in rows)
    bad = mokg(
        *store, "schema", "add-relation", "film.cast", "--from", "Entity", "--to", "Entity", cwd=tmp_path
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: relation type 'film.cast' is not a safe identifier (upper-case letters, digits and '_', "
        "a letter first, at most 100 characters); e.g. FILM_CAST"
    )
    added = mokg(
        *store, "schema", "add-relation", "FILM_CAST", "--from", "Entity", "--to", "Entity", cwd=tmp_path
    )
    assert added.returncode == 0 and "declared (Entity)-[:FILM_CAST]->(Entity) in run schema-" in added.stdout
    again = mokg(
        *store, "schema", "add-relation", "FILM_CAST", "--from", "Entity", "--to", "Entity", cwd=tmp_path
    )
    assert "declared already" in again.stdout


def ml_100k() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "the recbole wheel is not installed: `pip install --no-deps recbole==1.2.1` (make test does)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"


@pytest.mark.slow
def test_ml_100k_with_its_freebase_kg_loads_from_the_wheel(store: GraphStore) -> None:
    """The real ML-100K (100k ratings, 943 users, 1,682 items, 91,631 Freebase triples over 24
    relations linked to 1,598 items), read from the installed wheel, on both backends. Embedded:
    load ≈3 s, re-load (a no-op) ≈3 s; the ArcadeDB Bolt server: load 50–90 s (and ≈45 s for the
    fixture to clear it), so its re-load is left to the small contract tests."""
    started = time.monotonic()
    ds = RecBoleReader().read(ml_100k())
    with store.run_context("load", ds.source) as run_id:
        ingest_dataset(store, ds, run_id)
    stats = store.stats()
    assert stats["nodes"] == {
        "User": 943,
        "Item": 1682,
        "Category": 19,
        "Domain": 1,
        "Entity": 34628,
        "Run": 1,
    }
    kg = {k: v for k, v in stats["edges"].items() if k.startswith("(Entity)")}
    assert len(kg) == 24 and sum(kg.values()) == 91_631
    assert stats["edges"]["(User)-[:INTERACTED]->(Item)"] == 100_000
    assert stats["edges"]["(Item)-[:SAME_AS]->(Entity)"] == 1_598
    counts = store.run("relation_counts")
    assert dict(zip(counts["relation"], counts["count"], strict=True))["FILM_FILM_ACTOR"] == 40_152
    if store.backend == "embedded":
        with store.run_context("load", ds.source) as again:
            report = ingest_dataset(store, ds, again)
        assert sum(t.created or 0 for t in [*report.nodes.values(), *report.edges.values()]) == 0
    print(f"ML-100K on {store.backend}: {time.monotonic() - started:.1f} s")
