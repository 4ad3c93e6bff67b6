"""The aspect vocabulary of MURAL: per aspect its values, and each value's targets at three granularities.

MURAL ("A Multi-Granularity-Aware Aspect Learning Model for Multi-Aspect Dense Retrieval", Sun et
al., WSDM 2024, arXiv:2312.02538) predicts an item's aspect values not as isolated classes but at
several granularities, so that values sharing words ("Dog food", "Cat food") share targets:

* ``value`` — the whole value (one class per value of the aspect);
* ``word`` — the value's words (lower-cased alphanumeric runs);
* ``piece`` — the value's word-pieces under the encoder's tokenizer (punctuation-only pieces dropped).

Aspects come from the corpus (:class:`consumers.retrieval.corpus.RetrievalCorpus` items): one aspect
per level of the category path (``cat0`` = the root level, ``cat1``, … down to the deepest level
found, read from the store's ``SUBCATEGORY_OF`` chain by the corpus builder), then ``brand`` and
``domain``. A category value is identified by its path prefix (``Pets > Dog food``), so equal names
under different parents stay apart, and is written by its own name. Another tree needs no code
change; an aspect with no value anywhere is left out; an item without a value (a shallower leaf,
no brand) has no target for that aspect and is skipped by the loss.

Shapes: ``A`` aspects; aspect ``a`` has ``V_a`` values and, at granularity ``g``, ``U_ag`` units
(values, words or pieces).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

GRANULARITIES = ("value", "word", "piece")
_WORD = re.compile(r"[0-9a-z]+")
_ALNUM = re.compile(r"[0-9A-Za-z]")


def words(text: str) -> list[str]:
    """The value's words: lower-cased alphanumeric runs, in order, without repeats."""
    return list(dict.fromkeys(_WORD.findall(text.lower())))


def pieces(text: str, tokenizer: Any) -> list[int]:
    """Token ids of the value's word-pieces (no special tokens, no punctuation-only pieces, no repeats)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    toks = tokenizer.convert_ids_to_tokens(ids)
    return list(dict.fromkeys(int(i) for i, t in zip(ids, toks, strict=True) if _ALNUM.search(t)))


def item_aspects(items: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """aspect name → per item (value key, value text); ``("", "")`` where the item has none."""
    paths = [list(p) for p in items["category_path"]]
    depth = max((len(p) for p in paths), default=0)
    out: dict[str, list[tuple[str, str]]] = {}
    for level in range(depth):
        out[f"cat{level}"] = [
            (" > ".join(map(str, p[: level + 1])), str(p[level])) if level < len(p) else ("", "")
            for p in paths
        ]
    for col in ("brand", "domain"):
        out[col] = [(str(v or ""), str(v or "")) for v in items[col]]
    return out


@dataclass(frozen=True)
class Granularity:
    """One granularity of one aspect.

    units: the ``U`` classes (value keys, words, or piece tokens).
    tokens: per unit, the token ids whose input embeddings are averaged into its embedding (mural.py, Eq. V).
    members: per value of the aspect (``V`` lists), the units it covers: its positive targets.
    """

    units: list[str]
    tokens: list[list[int]]
    members: list[list[int]]

    def membership(self) -> np.ndarray:
        """[V, U] float32 0/1: row ``v`` is the multi-hot target of value ``v``."""
        out = np.zeros((len(self.members), len(self.units)), dtype=np.float32)
        for v, units in enumerate(self.members):
            out[v, units] = 1.0
        return out


@dataclass(frozen=True)
class AspectVocab:
    """Aspects (``names``), their values (``values``: keys; ``texts``: how each is written) and
    ``grains[aspect][granularity]``."""

    names: tuple[str, ...]
    values: dict[str, list[str]]
    texts: dict[str, list[str]]
    grains: dict[str, dict[str, Granularity]]

    def value_ids(self, items: pd.DataFrame) -> np.ndarray:
        """[N, A] int64: each item's value index per aspect, -1 where it has none (or an unseen one)."""
        cols = item_aspects(items)
        out = np.full((len(items), len(self.names)), -1, dtype=np.int64)
        for a, name in enumerate(self.names):
            index = {k: i for i, k in enumerate(self.values[name])}
            for n, (key, _) in enumerate(cols.get(name, [])):
                out[n, a] = index.get(key, -1)
        return out

    def multi_hot(self, items: pd.DataFrame, aspect: str, granularity: str) -> np.ndarray:
        """[N, U] float32: the items' targets for ``aspect`` at ``granularity`` (a zero row: no value)."""
        ids = self.value_ids(items)[:, self.names.index(aspect)]
        member = self.grains[aspect][granularity].membership()
        out = np.zeros((len(ids), member.shape[1]), dtype=np.float32)
        out[ids >= 0] = member[ids[ids >= 0]]
        return out


def build_vocab(
    items: pd.DataFrame, tokenizer: Any, granularities: Sequence[str] = GRANULARITIES
) -> AspectVocab:
    """The aspect vocabulary of ``items`` (ITEM_COLUMNS of the corpus), pieces by ``tokenizer``."""
    names: list[str] = []
    values: dict[str, list[str]] = {}
    texts: dict[str, list[str]] = {}
    grains: dict[str, dict[str, Granularity]] = {}
    for name, pairs in item_aspects(items).items():
        seen = dict(sorted({k: t for k, t in pairs if k}.items()))
        if not seen:
            continue
        names.append(name)
        values[name], texts[name] = list(seen), list(seen.values())
        grains[name] = {g: _granularity(g, values[name], texts[name], tokenizer) for g in granularities}
    return AspectVocab(tuple(names), values, texts, grains)


def _granularity(g: str, keys: list[str], texts: list[str], tokenizer: Any) -> Granularity:
    def ids(text: str) -> list[int]:
        return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]

    if g == "value":
        return Granularity(list(keys), [ids(t) for t in texts], [[v] for v in range(len(keys))])
    if g == "word":
        per_value = [words(t) for t in texts]
        units = sorted({w for ws in per_value for w in ws})
        index = {w: i for i, w in enumerate(units)}
        return Granularity(units, [ids(w) for w in units], [[index[w] for w in ws] for ws in per_value])
    if g == "piece":
        per_piece = [pieces(t, tokenizer) for t in texts]
        unit_ids = sorted({p for ps in per_piece for p in ps})
        at = {p: i for i, p in enumerate(unit_ids)}
        names = [str(t) for t in tokenizer.convert_ids_to_tokens(unit_ids)]
        return Granularity(names, [[p] for p in unit_ids], [[at[p] for p in ps] for ps in per_piece])
    raise ValueError(f"unknown granularity {g!r}; choose from {', '.join(GRANULARITIES)}")
