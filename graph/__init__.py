"""The mokg graph store: one `GraphStore` protocol, an embedded (LadybugDB) and a Neo4j backend.

Nothing here opens a database at import time; call :func:`graph.open_store`.
"""

from graph.errors import MokgError
from graph.store import GraphStore, open_store

__all__ = ["GraphStore", "MokgError", "open_store"]
