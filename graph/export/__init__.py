"""Converters from a :class:`~graph.subgraph.Subgraph` to PyG, networkx, RDF and Parquet.

Importing this package is cheap: torch, torch_geometric, networkx and rdflib are imported only
inside the functions that use them.
"""

from graph.export.neo4j_admin import write_neo4j_admin
from graph.export.networkx_view import to_networkx, write_networkx
from graph.export.parquet import read_parquet, write_parquet
from graph.export.pyg import IdMaps, load_heterodata, save_heterodata, to_heterodata
from graph.export.rdf import to_rdf, write_turtle

__all__ = [
    "IdMaps",
    "load_heterodata",
    "read_parquet",
    "save_heterodata",
    "to_heterodata",
    "to_networkx",
    "to_rdf",
    "write_neo4j_admin",
    "write_networkx",
    "write_parquet",
    "write_turtle",
]
