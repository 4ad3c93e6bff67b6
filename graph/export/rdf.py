"""A :class:`~graph.subgraph.Subgraph` as an RDF graph (rdflib), with edge provenance kept.

IRIs
- classes, relations and properties: ``http://mokg.io/ontology#{name}`` (prefix ``mokg:``);
- nodes: ``http://mokg.io/id/{label}/{url-quoted id}``;
- edge statements: ``http://mokg.io/stmt/{sha256 of head label, head, relation, tail label, tail}``.

Each node gets ``rdf:type mokg:{Label}``, ``rdfs:label`` = its name, and one ``mokg:{prop}``
literal per non-null property (xsd:integer, xsd:double, xsd:boolean, xsd:dateTime in UTC, or a
plain string), ``mokg:id`` included. Each edge is the plain triple ``head mokg:{REL} tail`` plus an
``rdf:Statement`` about it carrying the edge's properties (confidence, source, run_id, created_at,
...), so provenance survives. One ``mokg:GraphVersion`` resource records the graph version.

The namespace is kept as a string (:data:`MOKG_IRI`) so importing this module does not load rdflib.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from graph import files
from graph.export.props import EDGE_ENDS, check_name, declared_types, infer_type, iso_utc, records
from graph.schema import PropType
from graph.subgraph import EdgeKey, GraphVersion, Subgraph

if TYPE_CHECKING:
    import rdflib

MOKG_IRI = "http://mokg.io/ontology#"
ID_IRI = "http://mokg.io/id/"
STMT_IRI = "http://mokg.io/stmt/"
VERSION_IRI = "http://mokg.io/version/"


def entity_iri(label: str, id: str) -> str:
    """The IRI of node ``id`` of ``label``."""
    return f"{ID_IRI}{label}/{quote(id, safe='')}"


def statement_iri(key: EdgeKey, head: str, tail: str) -> str:
    """The IRI of the reified statement of one edge (stable across exports)."""
    digest = hashlib.sha256("\x1f".join((key[0], head, key[1], key[2], tail)).encode())
    return f"{STMT_IRI}{digest.hexdigest()[:32]}"


def to_rdf(sub: Subgraph) -> rdflib.Graph:
    """Convert ``sub`` to an rdflib Graph (layout above)."""
    import rdflib

    g = rdflib.Graph()
    g.bind("mokg", rdflib.Namespace(MOKG_IRI))
    for label, df in sub.nodes.items():
        types = declared_types(label, edge=False)
        for row in records(df):
            _add_node(g, check_name(label, "label"), row, types)
    for key, df in sub.edges.items():
        types = declared_types(key[1], edge=True)
        for row in records(df):
            _add_edge(g, key, row, types)
    _add_version(g, sub.version)
    return g


def write_turtle(sub: Subgraph, path: str | Path) -> Path:
    """Write ``sub`` as Turtle to ``path``."""
    return files.write_text(path, to_rdf(sub).serialize(format="turtle"))


def _add_node(g: rdflib.Graph, label: str, row: dict[str, Any], types: dict[str, Any]) -> None:
    from rdflib import RDF, RDFS, Literal, URIRef

    node = URIRef(entity_iri(label, str(row["id"])))
    g.add((node, RDF.type, URIRef(MOKG_IRI + label)))
    if "name" in row:
        g.add((node, RDFS.label, Literal(str(row["name"]))))
    _add_props(g, node, row, types)


def _add_edge(g: rdflib.Graph, key: EdgeKey, row: dict[str, Any], types: dict[str, Any]) -> None:
    from rdflib import RDF, URIRef

    head_label, rel, tail_label = key
    head, tail = str(row["head"]), str(row["tail"])
    s = URIRef(entity_iri(head_label, head))
    p = URIRef(MOKG_IRI + check_name(rel, "relation type"))
    o = URIRef(entity_iri(tail_label, tail))
    g.add((s, p, o))
    stmt = URIRef(statement_iri(key, head, tail))
    g.add((stmt, RDF.type, RDF.Statement))
    g.add((stmt, RDF.subject, s))
    g.add((stmt, RDF.predicate, p))
    g.add((stmt, RDF.object, o))
    _add_props(g, stmt, {k: v for k, v in row.items() if k not in EDGE_ENDS}, types)


def _add_version(g: rdflib.Graph, version: GraphVersion) -> None:
    from rdflib import RDF, URIRef

    node = URIRef(f"{VERSION_IRI}{quote(version.backend, safe='')}/{version.seq}")
    g.add((node, RDF.type, URIRef(MOKG_IRI + "GraphVersion")))
    fields = {k: v for k, v in version.as_dict().items() if v is not None}
    _add_props(g, node, fields, {"seq": PropType.INT64})


def _add_props(g: rdflib.Graph, subject: rdflib.URIRef, props: dict[str, Any], types: dict[str, Any]) -> None:
    from rdflib import URIRef

    for name, value in props.items():
        kind = types.get(name) or infer_type(value)
        g.add((subject, URIRef(MOKG_IRI + check_name(name, "property")), _literal(value, kind)))


def _literal(value: object, kind: PropType) -> rdflib.Literal:
    from rdflib import XSD, Literal

    if kind == PropType.INT64:
        return Literal(int(value), datatype=XSD.integer)  # type: ignore[call-overload]
    if kind == PropType.DOUBLE:
        return Literal(float(value), datatype=XSD.double)  # type: ignore[arg-type]
    if kind == PropType.BOOL:
        return Literal(bool(value), datatype=XSD.boolean)
    if kind == PropType.TIMESTAMP:
        return Literal(iso_utc(value), datatype=XSD.dateTime)
    return Literal(str(value))
