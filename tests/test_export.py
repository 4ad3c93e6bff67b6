"""The Subgraph converters: PyG HeteroData, networkx, RDF/Turtle and Parquet, on a tiny graph."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from graph.errors import InputError
from graph.export import (
    load_heterodata,
    read_parquet,
    save_heterodata,
    to_heterodata,
    to_networkx,
    to_rdf,
    write_networkx,
    write_parquet,
    write_turtle,
)
from graph.export.networkx_view import NODE_LINK_FIELDS
from graph.export.rdf import MOKG_IRI, entity_iri
from graph.subgraph import GraphVersion, Subgraph

T0 = pd.Timestamp("2024-05-01T12:00:00", tz="UTC")


def _ts(n: int) -> pd.Series:
    return pd.Series([T0 + pd.Timedelta(minutes=i) for i in range(n)])


def tiny() -> Subgraph:
    """2 Users, 2 Intents, 1 Category; u1 has both intents, u2 one; i1 needs the category."""
    users = pd.DataFrame(
        {"id": ["u1", "u2"], "name": ["Ann", "Bob"], "run_id": ["r1", "r1"], "created_at": _ts(2)}
    )
    intents = pd.DataFrame(
        {
            "id": ["i1", "i2"],
            "name": ["wedding", "moving house"],
            "description": ["getting married", None],
            "run_id": ["r1", "r1"],
            "created_at": _ts(2),
        }
    )
    cats = pd.DataFrame({"id": ["c1"], "name": ["dresses"], "level": [2], "created_at": _ts(1)})
    has_intent = pd.DataFrame(
        {
            "head": ["u1", "u1", "u2"],
            "tail": ["i1", "i2", "i2"],
            "confidence": [0.9, 0.3, 0.8],
            "source": ["llm", "llm", "rules"],
            "run_id": ["r2", "r2", "r3"],
            "created_at": _ts(3),
        }
    )
    needs = pd.DataFrame(
        {
            "head": ["i1"],
            "tail": ["c1"],
            "confidence": [0.7],
            "source": ["pair"],
            "run_id": ["r4"],
            "created_at": _ts(1),
        }
    )
    return Subgraph(
        version=GraphVersion(backend="ladybug", schema_version="1", seq=4, run_id="r4"),
        nodes={"User": users, "Intent": intents, "Category": cats},
        edges={
            ("User", "HAS_INTENT", "Intent"): has_intent,
            ("Intent", "NEEDS", "Category"): needs,
        },
    )


# --- PyG ---------------------------------------------------------------------------------------


def test_heterodata_shapes_and_ids() -> None:
    sub = tiny()
    data, maps = to_heterodata(sub)
    assert data["User"].num_nodes == 2 and data["Intent"].num_nodes == 2
    assert data["Intent"].node_id == ["i1", "i2"]
    key = ("User", "HAS_INTENT", "Intent")
    ei = data[key].edge_index
    assert ei.dtype == torch.long and tuple(ei.shape) == (2, 3)
    pairs = [(maps.id("User", int(h)), maps.id("Intent", int(t))) for h, t in ei.t().tolist()]
    assert pairs == [("u1", "i1"), ("u1", "i2"), ("u2", "i2")]
    attr = data[key].edge_attr
    assert attr.dtype == torch.float32 and tuple(attr.shape) == (3, 1)
    assert torch.allclose(attr[:, 0], torch.tensor([0.9, 0.3, 0.8]))
    assert data[("Intent", "NEEDS", "Category")].edge_index.tolist() == [[0], [0]]
    assert data["Category"].x.tolist() == [[2.0]] and data["Category"].x_names == ["level"]
    assert "x" not in data["User"]
    assert data.graph_version == sub.version.as_dict()
    assert maps.index("Intent", "i2") == 1


def test_id_maps_reject_unknown() -> None:
    _, maps = to_heterodata(tiny())
    with pytest.raises(InputError, match="u9"):
        maps.index("User", "u9")
    with pytest.raises(InputError, match="Brand"):
        maps.index("Brand", "b1")
    with pytest.raises(InputError, match="row 5"):
        maps.id("User", 5)


def test_heterodata_confidence_rules() -> None:
    sub = tiny()
    sub.edges[("Intent", "NEEDS", "Category")] = sub.edges[("Intent", "NEEDS", "Category")].drop(
        columns="confidence"
    )
    data, _ = to_heterodata(sub)
    assert data[("Intent", "NEEDS", "Category")].edge_attr.tolist() == [[1.0]]
    sub.edges[("User", "HAS_INTENT", "Intent")].loc[1, "confidence"] = float("nan")
    with pytest.raises(InputError, match="null confidence"):
        to_heterodata(sub)


def test_heterodata_rejects_dangling_edge() -> None:
    sub = tiny()
    sub.edges[("User", "HAS_INTENT", "Intent")].loc[0, "tail"] = "i404"
    with pytest.raises(InputError, match="i404"):
        to_heterodata(sub)


def test_save_load_heterodata(tmp_path: Path) -> None:
    path = save_heterodata(tiny(), tmp_path / "g.pt")
    data, maps = load_heterodata(path)
    assert maps.to_id == {"User": ["u1", "u2"], "Intent": ["i1", "i2"], "Category": ["c1"]}
    assert maps.index("User", "u2") == 1
    assert data[("User", "HAS_INTENT", "Intent")].edge_index.tolist() == [[0, 0, 1], [0, 1, 1]]
    assert data.graph_version["run_id"] == "r4"
    assert torch.load(path, weights_only=False)["graph_version"]["seq"] == 4
    with pytest.raises(InputError, match="save_heterodata"):
        load_heterodata(tmp_path / "missing.pt")


# --- networkx ----------------------------------------------------------------------------------


def test_networkx_view() -> None:
    g = to_networkx(tiny())
    assert g.number_of_nodes() == 5 and g.number_of_edges() == 4
    assert g.nodes["Intent:i2"] == {
        "label": "Intent",
        "id": "i2",
        "name": "moving house",
        "run_id": "r1",
        "created_at": "2024-05-01T12:01:00+00:00",
    }
    edge = g.edges["User:u1", "Intent:i2", "HAS_INTENT"]
    assert edge["type"] == "HAS_INTENT" and edge["confidence"] == 0.3
    assert edge["created_at"] == "2024-05-01T12:01:00+00:00" and "head" not in edge
    assert g.graph["graph_version"]["seq"] == 4


def test_write_networkx_json(tmp_path: Path) -> None:
    import networkx as nx

    path = write_networkx(tiny(), tmp_path / "g.json")
    raw = json.loads(path.read_text())
    assert raw["graph"]["graph_version"]["run_id"] == "r4"
    assert raw["edges"][0]["head"] == "User:u1" and raw["nodes"][0]["key"] == "User:u1"
    g = nx.node_link_graph(raw, **NODE_LINK_FIELDS)
    assert g.nodes["User:u1"]["id"] == "u1" and g.number_of_edges() == 4
    assert g.edges["Intent:i1", "Category:c1", "NEEDS"]["source"] == "pair"


# --- RDF ---------------------------------------------------------------------------------------


def test_rdf_sparql_over_turtle(tmp_path: Path) -> None:
    import rdflib

    path = write_turtle(tiny(), tmp_path / "g.ttl")
    g = rdflib.Graph().parse(path, format="turtle")
    query = """
        SELECT ?intent ?conf ?run WHERE {
          ?u mokg:id "u1" ; a mokg:User .
          ?u mokg:HAS_INTENT ?i .
          ?st a rdf:Statement ; rdf:subject ?u ; rdf:predicate mokg:HAS_INTENT ; rdf:object ?i ;
              mokg:confidence ?conf ; mokg:run_id ?run .
          ?i mokg:id ?intent .
          FILTER(?conf > 0.5)
        }"""
    ns = {"mokg": rdflib.Namespace(MOKG_IRI), "rdf": rdflib.RDF}
    rows = [(str(r[0]), float(str(r[1])), str(r[2])) for r in g.query(query, initNs=ns)]  # type: ignore[index]
    assert rows == [("i1", 0.9, "r2")]


def test_rdf_nodes_and_version() -> None:
    import rdflib
    from rdflib import RDF, RDFS, XSD, URIRef

    g = to_rdf(tiny())
    user = URIRef(entity_iri("User", "u2"))
    mokg = rdflib.Namespace(MOKG_IRI)
    assert (user, RDF.type, mokg.User) in g
    assert g.value(user, RDFS.label) == rdflib.Literal("Bob")
    created = g.value(user, mokg.created_at)
    assert isinstance(created, rdflib.Literal) and created.datatype == XSD.dateTime
    assert created.toPython() == T0.to_pydatetime() + pd.Timedelta(minutes=1)
    level = g.value(URIRef(entity_iri("Category", "c1")), mokg.level)
    assert isinstance(level, rdflib.Literal) and level.datatype == XSD.integer
    assert g.value(URIRef(entity_iri("Intent", "i2")), mokg.description) is None
    assert len(list(g.subjects(RDF.type, RDF.Statement))) == 4
    (version,) = g.subjects(RDF.type, mokg.GraphVersion)
    assert g.value(version, mokg.seq) == rdflib.Literal(4, datatype=XSD.integer)
    assert entity_iri("User", "a/b c") == "http://mokg.io/id/User/a%2Fb%20c"


# --- Parquet -----------------------------------------------------------------------------------


def test_parquet_round_trip(tmp_path: Path) -> None:
    sub = tiny()
    manifest_path = write_parquet(sub, tmp_path / "out")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["counts"] == {
        "nodes/User.parquet": 2,
        "nodes/Intent.parquet": 2,
        "nodes/Category.parquet": 1,
        "edges/User__HAS_INTENT__Intent.parquet": 3,
        "edges/Intent__NEEDS__Category.parquet": 1,
    }
    assert manifest["schema_version"] == "1" and manifest["graph_version"]["seq"] == 4
    assert not list((tmp_path / "out").rglob("*.tmp-*"))
    back = read_parquet(tmp_path / "out")
    assert back.version == sub.version
    assert back.nodes.keys() == sub.nodes.keys() and back.edges.keys() == sub.edges.keys()
    for label, df in sub.nodes.items():
        pd.testing.assert_frame_equal(back.nodes[label], df)
    for key, df in sub.edges.items():
        pd.testing.assert_frame_equal(back.edges[key], df)


def _counts_on_disk(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): len(pd.read_parquet(p)) for p in root.rglob("*.parquet") if p.is_file()}


def test_an_interrupted_parquet_reexport_leaves_the_old_export_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: a re-export killed half-way left the old manifest beside new table files."""
    old = tiny()
    write_parquet(old, tmp_path / "out")
    new = tiny()
    new.nodes["User"] = pd.DataFrame({"id": ["u7"], "name": ["Eve"], "run_id": ["r9"], "created_at": _ts(1)})
    written: list[Path] = []
    real = pd.DataFrame.to_parquet

    def die_on_the_second_table(df: pd.DataFrame, path: Any, **kw: Any) -> Any:
        if written:
            raise KeyboardInterrupt  # the process is stopped between two tables
        written.append(Path(path))
        return real(df, path, **kw)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", die_on_the_second_table)
    with pytest.raises(KeyboardInterrupt):
        write_parquet(new, tmp_path / "out")
    monkeypatch.undo()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert _counts_on_disk(tmp_path / "out") == manifest["counts"]
    back = read_parquet(tmp_path / "out")
    pd.testing.assert_frame_equal(back.nodes["User"], old.nodes["User"])
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the temp folder is gone too


def test_a_parquet_reexport_replaces_the_old_one_whole(tmp_path: Path) -> None:
    write_parquet(tiny(), tmp_path / "out")
    smaller = tiny()
    del smaller.nodes["Category"], smaller.edges[("Intent", "NEEDS", "Category")]
    write_parquet(smaller, tmp_path / "out")
    assert _counts_on_disk(tmp_path / "out") == {
        "nodes/User.parquet": 2,
        "nodes/Intent.parquet": 2,
        "edges/User__HAS_INTENT__Intent.parquet": 3,
    }


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"notes.txt": "mine"}, "not a mokg Parquet export"),
        ({"manifest.json": '{"format": "mokg-parquet/1"}', "notes.txt": "mine"}, "holds 'notes.txt'"),
        ({"manifest.json": "{not json"}, "not a mokg Parquet export"),
    ],
)
def test_parquet_export_refuses_a_folder_that_holds_other_files(
    tmp_path: Path, files: dict[str, str], words: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    with pytest.raises(InputError, match=words):
        write_parquet(tiny(), out)
    assert {p.name: p.read_text() for p in out.iterdir()} == files


def test_read_parquet_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="write_parquet"):
        read_parquet(tmp_path)


# --- import cost -------------------------------------------------------------------------------


def test_import_is_cheap() -> None:
    code = (
        "import sys, graph; before = set(sys.modules); import graph.export; "
        "heavy = {'torch', 'torch_geometric', 'rdflib', 'networkx'}; "
        "print(sorted(heavy & (set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- neo4j-admin import files --------------------------------------------------------------------


def test_neo4j_admin_files_follow_the_importer_headers_and_round_trip(tmp_path: Path) -> None:
    import csv
    import shlex

    from graph.export import write_neo4j_admin

    sub = tiny()
    sub.nodes["Intent"].loc[0, "description"] = 'a "quoted",\nmulti-line text'
    script = write_neo4j_admin(sub, tmp_path / "na")
    root = script.parent

    def rows(rel: str) -> list[dict[str, str]]:
        with (root / rel).open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    intents = rows("nodes/Intent.csv")
    assert list(intents[0]) == [
        "id:ID(Intent)",
        "name:string",
        "description:string",
        "run_id:string",
        "created_at:datetime",
    ]
    assert intents[0]["description:string"] == 'a "quoted",\nmulti-line text'
    assert intents[1]["description:string"] == ""
    assert intents[0]["created_at:datetime"] == "2024-05-01T12:00:00+00:00"
    assert rows("nodes/Category.csv")[0]["level:long"] == "2"
    edges = rows("relationships/User__HAS_INTENT__Intent.csv")
    assert [(e[":START_ID(User)"], e[":END_ID(Intent)"]) for e in edges] == [
        ("u1", "i1"),
        ("u1", "i2"),
        ("u2", "i2"),
    ]
    assert edges[0]["confidence:double"] == "0.9"
    ids = {r["id:ID(Intent)"] for r in intents}
    assert {e[":END_ID(Intent)"] for e in edges} <= ids  # every relationship end is a node of its ID space
    command = shlex.split(script.read_text(encoding="utf-8").split("\n", 4)[4].replace("\\\n", ""))
    assert command[:5] == ["neo4j-admin", "database", "import", "full", "neo4j"]
    assert "--nodes=Intent=nodes/Intent.csv" in command
    assert "--relationships=HAS_INTENT=relationships/User__HAS_INTENT__Intent.csv" in command
    assert all(
        (root / a.split("=", 2)[2]).is_file() for a in command if a.startswith(("--nodes", "--relationships"))
    )
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["relationships/User__HAS_INTENT__Intent.csv"] == 3
    write_neo4j_admin(tiny(), root)  # an earlier export is replaced, anything else refused
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="not a mokg neo4j-admin export"):
        write_neo4j_admin(sub, tmp_path / "other")
