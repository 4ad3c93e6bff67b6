"""Knowledge-empowered prompting: what the current graph already says about an entity.

PAIR's prompts carry domain knowledge (Gan et al., "Making Large Language Models Better Knowledge
Miners for Online Marketing with Progressive Prompting Augmentation", arXiv 2312.05276): the seed
entity's description and its known neighbours. Those come from the store (edges of the mined relations
written by earlier runs, and the category tree) plus what this run has accepted so far.
"""

from __future__ import annotations

from collections import defaultdict

from graph.schema import SCHEMA
from graph.store import GraphStore
from mining.pipeline.evidence import BehaviourEvidence
from mining.pipeline.types import Entity
from mining.prompts import EntityContext

MAX_NEIGHBOURS = 20


class GraphContext:
    """Known (relation, neighbour name) pairs per entity, from the store and from this run."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        self.evidence = BehaviourEvidence()  # behavioural evidence per entity (empty unless computed)

    @classmethod
    def from_store(cls, store: GraphStore, names: dict[tuple[str, str], str]) -> GraphContext:
        """Edges of every mined relation whose endpoints are both in ``names`` ((label, id) → name)."""
        ctx = cls()
        for rel in SCHEMA.mined_relations():
            for head, tail in rel.endpoints:
                if not any(k[0] == head for k in names) or not any(k[0] == tail for k in names):
                    continue
                edges = store.edge_table((head, rel.name, tail))
                for h, t in zip(edges.get("head", []), edges.get("tail", []), strict=True):
                    if (head, h) in names and (tail, t) in names:
                        ctx.add(Entity(h, names[head, h], head), rel.name, names[tail, t])
        return ctx

    def add(self, head: Entity, relation: str, tail_name: str) -> None:
        facts = self.known[head.ref]
        if (relation, tail_name) not in facts:
            facts.append((relation, tail_name))

    def to_json(self) -> dict[str, list[list[str]]]:
        """The known facts, for the checkpoint (a resumed job must prompt exactly as before)."""
        return {f"{t}\x1f{i}": [list(f) for f in facts] for (t, i), facts in self.known.items()}

    @classmethod
    def from_json(cls, data: dict[str, list[list[str]]]) -> GraphContext:
        ctx = cls()
        for ref, facts in data.items():
            label, _, node_id = ref.partition("\x1f")
            ctx.known[label, node_id] = [(r, n) for r, n in facts]
        return ctx

    def of(self, entity: Entity) -> EntityContext:
        neighbours = tuple(self.known.get(entity.ref, [])[:MAX_NEIGHBOURS])
        return EntityContext(
            entity.name, entity.type, entity.description, neighbours, self.evidence.of(entity.ref)
        )
