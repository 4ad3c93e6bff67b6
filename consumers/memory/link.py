"""Which KG nodes a thought is about: its user, and the intents, categories and brands it names.

A thought ``MENTIONS`` its user's ``User`` node and every ``Intent`` / ``Category`` / ``Brand``
whose name (or the name without a trailing parenthesis, or a declared alias) occurs in its text as
whole words, case-insensitively. Matching uses spaCy's ``PhraseMatcher`` over lower-cased tokens
(the blank English tokenizer: no model needed). This is exact-name linking: a paraphrase ("my
workouts" for "Gym training") is not linked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from consumers.memory.thought import Thought
from graph.store import GraphStore

LINKED_LABELS = ("Intent", "Category", "Brand")
MIN_NAME_CHARS = 4  # shorter names ("Tea"?) match too much


class Linker:
    """``names`` maps ``LABEL:ID`` to the names to look for; ``users`` are the store's user ids."""

    def __init__(self, names: Mapping[str, Iterable[str]], users: Iterable[str] = ()) -> None:
        import spacy
        from spacy.matcher import PhraseMatcher

        self._nlp = spacy.blank("en")
        self._matcher = PhraseMatcher(self._nlp.vocab, attr="LOWER")
        self._users = set(users)
        for node, variants in names.items():
            patterns = [self._nlp.make_doc(v) for v in dict.fromkeys(variants) if len(v) >= MIN_NAME_CHARS]
            if patterns:
                self._matcher.add(node, patterns)

    def link(self, thought: Thought) -> list[str]:
        """``LABEL:ID`` of the nodes ``thought`` is about (its user first, where the store has it)."""
        found = [f"User:{thought.user}"] if thought.user in self._users else []
        doc = self._nlp.make_doc(thought.text)
        for match_id, _, _ in self._matcher(doc):
            found.append(self._nlp.vocab.strings[match_id])
        return list(dict.fromkeys(found))

    @classmethod
    def from_store(cls, store: GraphStore) -> Linker:
        """Names of the store's intents, categories and brands; its users."""
        names: dict[str, list[str]] = {}
        for label in LINKED_LABELS:
            table = store.node_table(label, ["name"])
            for node, name in zip(table["id"].astype(str), table["name"], strict=True):
                if isinstance(name, str) and name.strip():
                    names[f"{label}:{node}"] = variants(name)
        users = store.node_table("User")["id"].astype(str)
        return cls(names, users)


def variants(name: str) -> list[str]:
    """The name, and without a trailing parenthesis ("Running shoes (trail)" → "Running shoes")."""
    base = re.sub(r"\s*\([^)]*\)\s*$", "", name).strip()
    return list(dict.fromkeys([name.strip(), base]))
