"""The non-LLM baseline of document mining (``mokg build --documents --llm none``): co-occurrence
of linked entities in a chunk, typed by the schema."""

from __future__ import annotations

from graph.schema import SCHEMA
from mining.documents.state import DocState
from mining.pipeline.relation_filter import tail_type
from mining.pipeline.types import Candidate, Entity


def cooccurring(state: DocState) -> list[Candidate]:
    """The non-LLM baseline: (head, relation, tail) for every entity linked in the same chunk that
    a mined relation of the head's label may end in (co-occurrence); one vote, prompt id
    ``chunk|linker``."""
    out = []
    for chunk_id, heads in sorted(state.heads.items()):
        links = state.links.get(chunk_id, [])
        for head in heads:
            for rel in SCHEMA.mined_relations():
                wanted = tail_type(rel.name, head.type)
                for label, node, name, _, _ in links:
                    tail = Entity(node, name, label)
                    if label == wanted and tail.ref != head.ref:
                        out.append(Candidate(head, rel.name, tail, 1, 1, 1, {name}, [f"{chunk_id}|linker"]))
    return list({(c.key, c.prompt_ids[0]): c for c in out}.values())
