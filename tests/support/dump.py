"""A canonical dump of a store: every node and edge of every label and relation, system ones
included, as sorted tuples of reprs, so two dumps compare equal exactly when the stores hold the
same rows."""

from __future__ import annotations

from graph.store import GraphStore


def canonical_dump(store: GraphStore) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    schema = store.refresh_schema()
    for label in schema.labels.values():
        df = store.node_table(label.name, [p.name for p in label.props])
        out[label.name] = sorted(tuple(repr(v) for v in row) for row in df.itertuples(index=False))
    for rel in schema.rel_types.values():
        for h, t in rel.endpoints:
            df = store.edge_table((h, rel.name, t), [p.name for p in rel.props])
            key = f"{h}-{rel.name}-{t}"
            out[key] = sorted(tuple(repr(v) for v in row) for row in df.itertuples(index=False))
    return out
