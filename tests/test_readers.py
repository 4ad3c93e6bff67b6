"""Readers for public formats: tiny files written here, read, ingested into a real embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from graph.errors import InputError
from graph.store import GraphStore, StoreConfig, open_store
from loaders.readers import (
    READERS,
    AmazonReader,
    Dataset,
    MovieLensReader,
    Reader,
    TriplesReader,
    ingest_dataset,
)

RATINGS = """user,item,rating,ts
1,10,4,881250949
1,20,5,2020-01-02T03:04:05Z
2,10,3,881250950
2,10,5,881250960
"""
REVIEWS = """{"reviewerID": "A1", "asin": "B01", "overall": 4.0, "unixReviewTime": 1500000000, "summary": "."}

{"reviewerID": "A2", "asin": "B02", "overall": 5, "unixReviewTime": 1500000100}
{"reviewerID": "A1", "asin": "B03", "overall": 2.0, "unixReviewTime": 1500000200}
"""
META = """{"asin": "B01", "title": "Red dress", "description": ["Lovely", "red"], "brand": "Acme", \
"category": ["Clothing", "Women", "Dresses"], "price": "$12.99"}
{"asin": "B02", "title": "Blue suit", "description": "A suit", "brand": "Acme", \
"category": ["Clothing", "Men"], "price": 99}
{"asin": "B02", "title": "Blue suit", "description": "A suit", "brand": "Acme", \
"category": ["Clothing", "Men"], "price": 99}
{"asin": "B04", "title": "Hat", "price": "$5.00 - $9.00"}
"""
TRIPLES = """head,relation,tail,head_label,tail_label,confidence
wedding,needs,dresses,,Category,0.9
wedding,PRECEDES,honeymoon,,,
i1,BELONGS_TO,dresses,Item,,
dresses,SUBCATEGORY_OF,clothing,,,0.7
wedding,PRECEDES,honeymoon,,,
"""


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[GraphStore]:
    with open_store(StoreConfig(path=tmp_path / "g"), create=True) as store:
        yield store


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def ingest(store: GraphStore, dataset: Dataset) -> None:
    ingest_dataset(store, dataset, store.start_run("test"))


def counts(store: GraphStore) -> tuple[dict[str, int], dict[str, int]]:
    stats = store.stats()
    return {k: v for k, v in stats["nodes"].items() if k != "Run"}, stats["edges"]


def edge(store: GraphStore, key: tuple[str, str, str], head: str, tail: str) -> dict[str, Any]:
    df = store.subgraph().edges[key]
    rows = df[(df["head"] == head) & (df["tail"] == tail)]
    assert len(rows) == 1
    return dict(rows.iloc[0])


def node(store: GraphStore, label: str, id_: str) -> dict[str, Any]:
    df = store.subgraph().nodes[label]
    return dict(df[df["id"] == id_].iloc[0])


def test_registry_holds_one_reader_per_format() -> None:
    assert set(READERS) == {"movielens", "amazon", "triples", "recbole"}
    reader: Reader = MovieLensReader()
    assert reader.name == "movielens"


def test_movielens_ratings(graph: GraphStore, tmp_path: Path) -> None:
    ds = MovieLensReader().read(write(tmp_path, "ratings.csv", RATINGS))
    assert ds.source == "movielens:ratings.csv"
    assert ds.counts() == {"User": 2, "Item": 2, "User-INTERACTED-Item": 3}
    ingest(graph, ds)
    first = counts(graph)
    assert first == ({"User": 2, "Item": 2}, {"(User)-[:INTERACTED]->(Item)": 3})
    key = ("User", "INTERACTED", "Item")
    e = edge(graph, key, "ml_u_1", "ml_i_10")
    assert e["confidence"] == pytest.approx(0.8)
    assert e["ts"] == pd.Timestamp("1997-12-04 15:55:49")
    assert (e["kind"], e["domain"], e["count"], e["source"]) == (
        "rating",
        "movies",
        1,
        "movielens:ratings.csv",
    )
    assert edge(graph, key, "ml_u_1", "ml_i_20")["ts"] == pd.Timestamp("2020-01-02 03:04:05")
    repeated = edge(graph, key, "ml_u_2", "ml_i_10")  # two rows: the latest wins, counts add up
    assert (repeated["count"], repeated["confidence"]) == (2, 1.0)
    assert repeated["ts"] == pd.Timestamp("1997-12-04 15:56:00")
    assert node(graph, "User", "ml_u_1")["name"] == "1"
    ingest(graph, MovieLensReader().read(tmp_path / "ratings.csv"))
    assert counts(graph) == first


def test_movielens_layouts_and_options(tmp_path: Path) -> None:
    ml = write(tmp_path, "ml.csv", "userId,movieId,rating,timestamp\n7,3,2.5,1000000000\n")
    ds = MovieLensReader(user_prefix="u", item_prefix="m", max_rating=10).read(ml, domain="film")
    e = ds.edges[("User", "INTERACTED", "Item")].iloc[0]
    assert (e["head"], e["tail"], e["domain"], e["confidence"]) == ("u7", "m3", "film", 0.25)
    u_data = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    ds = MovieLensReader.u_data().read(u_data)
    assert ds.counts() == {"User": 2, "Item": 2, "User-INTERACTED-Item": 2}
    tsv = write(tmp_path, "r.tsv", "user\titem\trating\tts\n1\t2\t5\t2001-09-09T01:46:40+00:00\n")
    row = MovieLensReader().read(tsv).edges[("User", "INTERACTED", "Item")].iloc[0]
    assert row["ts"] == pd.Timestamp("2001-09-09 01:46:40")


def test_amazon_reviews_with_metadata(graph: GraphStore, tmp_path: Path) -> None:
    reviews, meta = write(tmp_path, "reviews.jsonl", REVIEWS), write(tmp_path, "meta.jsonl", META)
    ds = AmazonReader(metadata=meta).read(reviews)
    ingest(graph, ds)
    first = counts(graph)
    assert first == (
        {"User": 2, "Item": 4, "Brand": 1, "Category": 4},
        {
            "(User)-[:INTERACTED]->(Item)": 3,
            "(Item)-[:MADE_BY]->(Brand)": 2,
            "(Item)-[:BELONGS_TO]->(Category)": 2,
            "(Category)-[:SUBCATEGORY_OF]->(Category)": 3,
        },
    )
    assert edge(graph, ("User", "INTERACTED", "Item"), "az_u_A1", "az_i_B01")["confidence"] == 0.8
    dress = node(graph, "Item", "az_i_B01")
    assert (dress["name"], dress["description"], dress["price"], dress["kind"]) == (
        "Red dress",
        "Lovely\nred",
        12.99,
        "product",
    )
    assert node(graph, "Item", "az_i_B04")["price"] == 5.0  # a range keeps its low end
    assert node(graph, "Item", "az_i_B03")["name"] == "B03"  # reviewed, no metadata
    cats = ds.nodes["Category"].set_index("name")["level"].to_dict()
    assert cats == {"Clothing": 0, "Women": 1, "Dresses": 2, "Men": 1}
    ids = ds.nodes["Category"].set_index("name")["id"]
    sub = ds.edges[("Category", "SUBCATEGORY_OF", "Category")]
    assert ((sub["head"] == ids["Dresses"]) & (sub["tail"] == ids["Women"])).sum() == 1
    assert ds.edges[("Item", "BELONGS_TO", "Category")]["tail"].tolist() == [ids["Dresses"], ids["Men"]]
    assert edge(graph, ("Item", "MADE_BY", "Brand"), "az_i_B02", "az_b_Acme")["source"] == ds.source
    assert AmazonReader(metadata=meta).read(reviews).nodes["Category"]["id"].tolist() == ids.tolist()
    ingest(graph, AmazonReader(metadata=meta).read(reviews))
    assert counts(graph) == first


def test_amazon_2023_style_and_reviews_alone(tmp_path: Path) -> None:
    reviews = write(
        tmp_path,
        "Books.jsonl",
        '{"user_id": "U1", "asin": "X1", "parent_asin": "P1", "rating": 3.0, "timestamp": 1588687728923}\n',
    )
    meta = write(
        tmp_path,
        "meta_Books.jsonl",
        '{"parent_asin": "P1", "title": "A book", "store": "Pub", "categories": [["Books", "Poetry"]]}\n',
    )
    alone = AmazonReader().read(reviews)
    assert alone.counts() == {"User": 1, "Item": 1, "User-INTERACTED-Item": 1}
    ts = alone.edges[("User", "INTERACTED", "Item")]["ts"].iloc[0]
    assert ts == pd.Timestamp("2020-05-05 14:08:48.923")  # milliseconds detected
    ds = AmazonReader(metadata=meta).read(reviews)
    assert ds.nodes["Item"]["id"].tolist() == ["az_i_P1"]
    assert ds.nodes["Brand"]["name"].tolist() == ["Pub"]
    assert ds.nodes["Category"]["level"].tolist() == [0, 1]


def test_triples(graph: GraphStore, tmp_path: Path) -> None:
    ds = TriplesReader().read(write(tmp_path, "triples.csv", TRIPLES))
    ingest(graph, ds)
    first = counts(graph)
    assert first == (
        {"Intent": 2, "Category": 2, "Item": 1},
        {
            "(Intent)-[:NEEDS]->(Category)": 1,
            "(Intent)-[:PRECEDES]->(Intent)": 1,
            "(Item)-[:BELONGS_TO]->(Category)": 1,
            "(Category)-[:SUBCATEGORY_OF]->(Category)": 1,
        },
    )
    assert edge(graph, ("Intent", "NEEDS", "Category"), "wedding", "dresses")["confidence"] == 0.9
    assert edge(graph, ("Intent", "PRECEDES", "Intent"), "wedding", "honeymoon")["confidence"] == 1.0
    assert node(graph, "Intent", "wedding")["name"] == "wedding"
    ingest(graph, TriplesReader().read(tmp_path / "triples.csv"))
    assert counts(graph) == first


def test_triples_with_a_node_list(tmp_path: Path) -> None:
    nodes = write(tmp_path, "nodes.csv", "id,label,name\nwedding,Intent,Wedding prep\nhoney,Intent,\n")
    triples = write(tmp_path, "t.csv", "head,relation,tail\nwedding,precedes,honey\n")
    ds = TriplesReader(nodes=nodes).read(triples)
    assert ds.nodes["Intent"]["name"].tolist() == ["Wedding prep", "honey"]
    assert ds.counts() == {"Intent": 2, "Intent-PRECEDES-Intent": 1}


def test_triples_never_clobber_a_mined_edge_and_a_rollback_restores_it(
    graph: GraphStore, tmp_path: Path
) -> None:
    """Loading a triple that is already in the graph keeps its provenance and its nodes' names;
    --overwrite replaces the provenance (never the names), and deleting that load puts it back."""
    with graph.run_context("mine") as mine:
        graph.upsert_nodes("Intent", [{"id": "wedding", "name": "Wedding preparation"}], run_id=mine)
        graph.upsert_nodes("Category", [{"id": "dresses", "name": "Wedding dresses"}], run_id=mine)
        mined = {"head": "wedding", "tail": "dresses", "confidence": 0.95, "vote": 0.8, "source": mine}
        graph.upsert_edges("NEEDS", [mined], run_id=mine, tail="Category")
    key = ("Intent", "NEEDS", "Category")

    def provenance() -> tuple[Any, ...]:
        e = edge(graph, key, "wedding", "dresses")
        return (e["confidence"], e["vote"], e["source"], e["run_id"], e["created_at"])

    before = provenance()
    path = write(
        tmp_path, "t.csv", "head,relation,tail,tail_label,confidence\nwedding,needs,dresses,Category,0.2\n"
    )
    with graph.run_context("load") as load:
        report = ingest_dataset(graph, TriplesReader().read(path), load)
    assert report.edges["(Intent)-[:NEEDS]->(Category)"].kept == 1
    assert provenance() == before
    assert node(graph, "Intent", "wedding")["name"] == "Wedding preparation"
    with graph.run_context("load") as load:
        ingest_dataset(graph, TriplesReader().read(path), load, overwrite=True)
    replaced = edge(graph, key, "wedding", "dresses")
    assert (replaced["confidence"], replaced["source"]) == (0.2, "triples:t.csv")
    assert node(graph, "Intent", "wedding")["name"] == "Wedding preparation"
    assert node(graph, "Category", "dresses")["name"] == "Wedding dresses"
    assert graph.delete_run(load)["values_restored"] == 2
    assert provenance() == before


BAD: list[tuple[str, str, dict[str, str], tuple[str, ...]]] = [
    ("movielens", "ratings.csv", {"ratings.csv": "user,item,rating\n1,2,3\n"}, ("line 1", "'ts'")),
    ("movielens", "ratings.csv", {"ratings.csv": RATINGS + "3,4,5,yesterday\n"}, ("data row 5", "'ts'")),
    (
        "movielens",
        "ratings.csv",
        {"ratings.csv": "user,item,rating,ts\n1,2,good,5\n"},
        ("data row 1", "'rating'"),
    ),
    (
        "movielens",
        "ratings.csv",
        {"ratings.csv": "user,item,rating,ts\n1,2,3,5\n1,3,6,5\n"},
        ("data row 2", "'rating'"),
    ),
    ("movielens", "ratings.csv", {"ratings.csv": "user,item,rating,ts\n1,,3,5\n"}, ("data row 1", "'item'")),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": REVIEWS + '{"reviewerID": "A3", "asin": \n'},
        ("line 5", "column"),
    ),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": REVIEWS + '{"reviewerID": "A3", "overall": 1, "unixReviewTime": 1}\n'},
        ("line 5", "'asin'"),
    ),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": REVIEWS.replace("1500000100", '"soon"')},
        ("line 3", "'unixReviewTime'"),
    ),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": '{"reviewerID": "A1", "asin": "B1", "overall": 1}\n'},
        ("line 1", "'unixReviewTime'"),
    ),
    (
        "amazon",
        "meta.jsonl",
        {"reviews.jsonl": REVIEWS, "meta.jsonl": META + '{"asin": "B01", "title": "Pen"}\n'},
        ("line 5", "'title'", "line 1"),
    ),
    (
        "amazon",
        "meta.jsonl",
        {"reviews.jsonl": REVIEWS, "meta.jsonl": '{"asin": "B9", "price": "cheap"}\n'},
        ("line 1", "'price'"),
    ),
    ("triples", "triples.csv", {"triples.csv": "head,relation\na,NEEDS\n"}, ("line 1", "'tail'")),
    (
        "triples",
        "triples.csv",
        {"triples.csv": TRIPLES + "a,LIKES,b,,,\n"},
        ("data row 6", "'relation'", "SUBCATEGORY_OF"),
    ),
    (
        "triples",
        "triples.csv",
        {"triples.csv": TRIPLES + "a,BELONGS_TO,b,,,\n"},
        ("data row 6", "'head_label'"),
    ),
    (
        "triples",
        "triples.csv",
        {"triples.csv": TRIPLES + "wedding,needs,dresses,,Category,0.5\n"},
        ("data row 6", "'confidence'", "data row 1"),
    ),
    (
        "triples",
        "triples.csv",
        {"triples.csv": TRIPLES.replace(",0.7", ",high")},
        ("data row 4", "'confidence'"),
    ),
    (
        "triples",
        "triples.csv",
        {
            "triples.csv": "head,relation,tail\nwedding,PRECEDES,honey\nwedding,PRECEDES,x\n",
            "nodes.csv": "id,label\nwedding,Intent\nhoney,Intent\n",
        },
        ("data row 2", "'tail'", "'x'"),
    ),
    (
        "triples",
        "nodes.csv",
        {
            "triples.csv": "head,relation,tail\nw,PRECEDES,h\n",
            "nodes.csv": "id,label,name\nw,Intent,W\nh,Intent,H\nw,Intent,Other\n",
        },
        ("data row 3", "'id'"),
    ),
    (
        "triples",
        "nodes.csv",
        {"triples.csv": "head,relation,tail\nw,PRECEDES,h\n", "nodes.csv": "id,label\nw,Intent\nh,Mood\n"},
        ("data row 2", "'label'"),
    ),
]


LONG_ID = "x" * 1100
REVIEW = '{{"reviewerID": {user}, "asin": "B1", "overall": {rating}, "unixReviewTime": {ts}}}\n'
# Issue 15: inputs that used to load silently (header only, JSON objects / lists / booleans as ids,
# ratings and times, times thousands of years off, ids of any length) or crash (a lone surrogate).
BAD_SILENT: list[tuple[str, str, dict[str, str], tuple[str, ...]]] = [
    ("movielens", "ratings.csv", {"ratings.csv": "user,item,rating,ts\n"}, ("no data rows",)),
    ("triples", "triples.csv", {"triples.csv": "head,relation,tail\n"}, ("no data rows",)),
    ("amazon", "reviews.jsonl", {"reviews.jsonl": "\n\n"}, ("no JSON objects",)),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": REVIEWS + REVIEW.format(user='{"x": 1}', rating=4, ts=1500000000)},
        ("line 5", "'reviewerID'", "JSON object where text belongs"),
    ),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": REVIEW.format(user='["A1"]', rating=4, ts=1500000000)},
        ("line 1", "'reviewerID'", "JSON list"),
    ),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": REVIEW.format(user='"A1"', rating="true", ts=1500000000)},
        ("line 1", "'overall'", "JSON boolean where a number belongs"),
    ),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": REVIEW.format(user='"A1"', rating=4, ts="false")},
        ("line 1", "'unixReviewTime'", "JSON boolean where a time belongs"),
    ),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": REVIEW.format(user='"A\\ud800"', rating=4, ts=1500000000)},
        ("line 1", "'reviewerID'", "unpaired surrogate"),
    ),
    (
        "amazon",
        "meta.jsonl",
        {"reviews.jsonl": REVIEWS, "meta.jsonl": '{"asin": "B01", "brand": {"name": "Acme"}}\n'},
        ("line 1", "'brand'", "JSON object where text belongs"),
    ),
    (
        "movielens",
        "ratings.csv",
        {"ratings.csv": "user,item,rating,ts\n1,2,3,881250949\n1,3,3,-99000000000\n"},
        ("data row 2", "'ts'", "outside 1970-01-01 .. 2100-12-31"),
    ),
    (
        "movielens",
        "ratings.csv",
        {"ratings.csv": "user,item,rating,ts\n1,2,3,99999999999\n"},
        ("data row 1", "'ts'", "outside 1970-01-01"),
    ),
    (
        "movielens",
        "ratings.csv",
        {"ratings.csv": "user,item,rating,ts\n1,2,3,5138-01-01T00:00:00Z\n"},
        ("data row 1", "'ts'", "outside 1970-01-01"),
    ),
    (
        "movielens",
        "ratings.csv",
        {"ratings.csv": "user,item,rating,ts\n1,2,3,1969-12-31T23:59:59Z\n"},
        ("data row 1", "'ts'", "outside 1970-01-01"),
    ),
    (
        "movielens",
        "ratings.csv",
        {"ratings.csv": f"user,item,rating,ts\n1,2,3,5\n{LONG_ID},2,3,5\n"},
        ("data row 2", "'user'", "an id of 1,105 characters", "at most 1,024"),
    ),
    (
        "triples",
        "triples.csv",
        {"triples.csv": f"head,relation,tail\nw,PRECEDES,{LONG_ID}\n"},
        ("data row 1", "'tail'", "at most 1,024"),
    ),
]


def _reader(kind: str, files: dict[str, Path]) -> tuple[Reader, Path]:
    if kind == "movielens":
        return MovieLensReader(), files["ratings.csv"]
    if kind == "amazon":
        return AmazonReader(metadata=files.get("meta.jsonl")), files["reviews.jsonl"]
    return TriplesReader(nodes=files.get("nodes.csv")), files["triples.csv"]


@pytest.mark.parametrize(("kind", "culprit", "texts", "expected"), BAD + BAD_SILENT)
def test_bad_input_is_refused_naming_file_row_and_column(
    graph: GraphStore,
    tmp_path: Path,
    kind: str,
    culprit: str,
    texts: dict[str, str],
    expected: tuple[str, ...],
) -> None:
    ingest(graph, MovieLensReader().read(write(tmp_path, "good.csv", RATINGS)))
    before = counts(graph)
    files = {name: write(tmp_path, name, text) for name, text in texts.items()}
    reader, path = _reader(kind, files)
    with pytest.raises(InputError) as info:
        ingest(graph, reader.read(path))
    message = str(info.value)
    assert str(files[culprit]) in message
    for part in expected:
        assert part in message
    assert counts(graph) == before


def test_times_at_the_edges_of_the_range_load(tmp_path: Path) -> None:
    text = "user,item,rating,ts\n1,2,3,0\n1,3,3,1970-01-01T00:00:00Z\n1,4,3,2100-12-31T23:59:59Z\n"
    ts = MovieLensReader().read(write(tmp_path, "r.csv", text)).edges[("User", "INTERACTED", "Item")]["ts"]
    assert ts.min() == pd.Timestamp("1970-01-01") and ts.max() == pd.Timestamp("2100-12-31 23:59:59")


NOT_UTF8: list[tuple[str, str, dict[str, bytes], tuple[str, ...]]] = [
    (
        "movielens",
        "ratings.csv",
        {"ratings.csv": b"user,item,rating,ts\n1,10,4,881250949\n2,\xff\xfe,3,881250950\n"},
        ("line 3", "byte 0xff", "not UTF-8"),
    ),
    ("movielens", "ratings.csv", {"ratings.csv": b"us\xe9r,item,rating,ts\n1,2,3,5\n"}, ("line 1",)),
    (
        "amazon",
        "reviews.jsonl",
        {"reviews.jsonl": REVIEWS.encode() + b'{"reviewerID": "\xe9", "asin": "B"}\n'},
        ("line 5", "byte 0xe9", "not UTF-8"),
    ),
    (
        "amazon",
        "meta.jsonl",
        {"reviews.jsonl": REVIEWS.encode(), "meta.jsonl": b'{"asin": "B01", "title": "caf\xe9"}\n'},
        ("line 1", "byte 0xe9"),
    ),
    (
        "triples",
        "triples.csv",
        {"triples.csv": b"head,relation,tail\nw,PRECEDES,h\nw,PRECEDES,\xc3\n"},
        ("line 3", "byte 0xc3"),
    ),
    (
        "triples",
        "nodes.csv",
        {
            "triples.csv": b"head,relation,tail\nw,PRECEDES,h\n",
            "nodes.csv": b"id,label\nw,Intent\n\x80,Intent\n",
        },
        ("line 3", "byte 0x80"),
    ),
]


@pytest.mark.parametrize(("kind", "culprit", "raw", "expected"), NOT_UTF8)
def test_bytes_that_are_not_utf8_are_one_clear_error(
    tmp_path: Path, kind: str, culprit: str, raw: dict[str, bytes], expected: tuple[str, ...]
) -> None:
    for name, data in raw.items():
        (tmp_path / name).write_bytes(data)
    reader, path = _reader(kind, {name: tmp_path / name for name in raw})
    with pytest.raises(InputError) as info:
        reader.read(path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / culprit}: ")
    for part in expected:
        assert part in message


def test_a_long_bad_value_is_shortened_in_the_error(tmp_path: Path) -> None:
    text = f"user,item,rating,ts\n1,2,{'9' * 100_000}x,5\n"
    with pytest.raises(InputError) as info:
        MovieLensReader().read(write(tmp_path, "r.csv", text))
    assert "is not a number" in str(info.value) and len(str(info.value)) < 300


def test_ingest_is_all_or_nothing(graph: GraphStore) -> None:
    users = pd.DataFrame({"id": ["u1"], "name": ["Ann"]})
    dangling = pd.DataFrame({"head": ["u1"], "tail": ["nowhere"], "kind": ["rating"]})
    ds = Dataset("hand-made", nodes={"User": users}, edges={("User", "INTERACTED", "Item"): dangling})
    with pytest.raises(InputError, match=r"hand-made: .*'nowhere'"):
        ingest(graph, ds)
    assert counts(graph) == ({}, {})
