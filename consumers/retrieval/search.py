"""Answering from a saved index folder (:mod:`.serve` builds it): ``mokg search``.

A search answer shows, per hit, the item's **matched aspects**: its aspect values (category path
levels ``cat0`` …, ``brand``, ``domain``) that share a word with the query (lower-cased, a final
``s`` dropped, a few stop words ignored), for every model. ``explain`` adds, for a MURAL index, the
score's decomposition over the item's fusion::

    s(q, d) = z_q · z_d = z_q · h_cls^d + Σ_a z_q · (w_a^d h_a^d)

(one ``cls`` part and one part per aspect, which sum to the score up to float error), with each
aspect's gate weight ``w_a^d`` and the item's value, and the query's top predicted value per aspect
(its aspect output ``h_a^q`` against that aspect's value-granularity unit embeddings, softmax).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from consumers.retrieval.aspects import item_aspects, words
from consumers.retrieval.index import ItemIndex, load_index
from consumers.retrieval.serve import METHODS, item_texts, load_model
from graph import files
from graph.errors import InputError
from loaders.features import TextEncoder, make_encoder

if TYPE_CHECKING:
    from consumers.retrieval.mural import Mural

STOP_WORDS = frozenset({"a", "an", "and", "the", "for", "of", "in", "on", "with", "to", "or", "by", "my"})


class QueryEncoder:
    """Encodes queries as the index's items were: the registered zero-shot encoder (unit vectors) or
    the index's own trained MURAL/BIBERT, in ``precision`` (``fp32``, ``bf16``, ``auto``), whatever
    the items' precision (the manifest's ``precision``): bf16 queries against fp32 items are allowed
    (their vectors move by a cosine of ~1e-4; ``docs/retrieval.md``, "bf16 serving")."""

    def __init__(self, index: ItemIndex, folder: Path, precision: str = "fp32") -> None:
        self.kind = str(index.manifest.get("model", "minilm"))
        self.model: Mural | None = None
        self._encoder: TextEncoder | None = None
        if self.kind == "minilm":
            self._encoder = make_encoder(str(index.manifest["encoder"]), precision)
            self.precision = str(getattr(self._encoder, "precision", "fp32"))
        elif self.kind in METHODS:
            self.model = load_model(folder, index.manifest, index.items)
            if precision != "fp32":
                self.model.serve_in(precision)
            self.precision = self.model.precision
        else:
            raise InputError(f"{folder} was built with an unknown model {self.kind!r}; rebuild it")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[N, dim] float32 query vectors."""
        if self.model is not None:
            return self.model.embed(list(texts))
        from consumers.retrieval.biencoder import embed

        assert self._encoder is not None
        return embed(list(texts), self._encoder)


# -- searching ---------------------------------------------------------------------------------------
@dataclass
class Hit:
    """One item of an answer. ``matched``: its aspect values sharing a word with the query
    ({aspect, value, words}); ``explanation``: the score's parts (``explain`` on a MURAL index)."""

    item: str
    score: float
    title: str
    category_path: list[str]
    brand: str
    domain: str
    matched: list[dict[str, Any]] = field(default_factory=list)
    explanation: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"] = round(self.score, 5)
        if out["explanation"] is None:
            del out["explanation"]
        return out


@dataclass
class Answer:
    """One query's hits; with ``explain``: ``query_aspects`` (MURAL: per aspect, the query's top
    predicted value and its probability) and ``note`` (what the explanation could not show)."""

    query: str
    hits: list[Hit]
    query_aspects: dict[str, dict[str, Any]] | None = None
    note: str = ""


class Searcher:
    """A loaded index folder and its query encoder (in ``precision``: :class:`QueryEncoder`)."""

    def __init__(self, folder: Path, precision: str = "fp32") -> None:
        self.folder = Path(folder)
        self.index = load_index(self.folder)
        self.encoder = QueryEncoder(self.index, self.folder, precision)
        self.items = self.index.items.reset_index(drop=True)
        self.row_of = {str(i): n for n, i in enumerate(self.items["item"])}
        self.values = item_aspects(self.items)  # aspect → per row (key, text)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.index.manifest

    def search(
        self, texts: Sequence[str], k: int = 20, domain: str | None = None, explain: bool = False
    ) -> list[Answer]:
        """Each query's top ``k`` (``domain``: only its items) with matched aspects; ``explain``: the
        per-aspect decomposition (MURAL) or a note saying why not."""
        if k < 1:
            raise InputError(f"k must be ≥ 1, got {k}")
        texts = [str(t) for t in texts]
        found = self.index.search(self.encoder.encode(texts), k, domain)
        answers = []
        for text, hits in zip(texts, found, strict=True):
            rows = [self._hit(text, item, s) for item, s in hits]
            answer = Answer(text, rows)
            if explain:
                self._explain(answer)
            answers.append(answer)
        return answers

    def _hit(self, text: str, item: str, score: float) -> Hit:
        r = self.row_of[item]
        row = self.items.iloc[r]
        values = [(a, pairs[r][1]) for a, pairs in self.values.items() if pairs[r][1]]
        return Hit(
            item,
            float(score),
            str(row["title"]),
            [str(c) for c in row["category_path"]],
            str(row["brand"] or ""),
            str(row["domain"]),
            matched_aspects(text, values),
        )

    def _explain(self, answer: Answer) -> None:
        model = self.encoder.model
        if model is None or model.gate is None:
            answer.note = (
                f"this is a {self.encoder.kind.upper()} index: only the lexical aspect matches are "
                "shown; the per-aspect score decomposition needs a MURAL index "
                "(mokg train retrieval --method mural)"
            )
            return
        answer.query_aspects, parts = explain_hits(
            model, answer.query, self._texts([h.item for h in answer.hits]), self.values,
            [self.row_of[h.item] for h in answer.hits],
        )  # fmt: skip
        for hit, p in zip(answer.hits, parts, strict=True):
            hit.explanation = p

    def _texts(self, ids: list[str]) -> list[str]:
        rows = self.items.iloc[[self.row_of[i] for i in ids]]
        return item_texts(rows, str(self.manifest.get("item_field", "text")))


def explain_hits(
    model: Mural,
    query: str,
    item_texts: list[str],
    values: dict[str, list[tuple[str, str]]],
    rows: list[int],
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(query's top value per aspect, per item its decomposition) for a MURAL ``model`` (module doc).

    An item's decomposition: ``parts`` ({"cls": z_q·h_cls, aspect: z_q·w_a h_a}, summing to the
    score), ``weights`` (w_a), ``values`` (the item's value per aspect), ``drivers`` (aspects with a
    positive part, largest first) and ``sum``.
    """
    import torch

    with torch.no_grad():
        q = model(model.tokenize([query]))
        z_q = q.fused[0].double()
        predicted: dict[str, dict[str, Any]] = {}
        grain = "value" if "value" in model.config.granularities else model.config.granularities[0]
        for a, name in enumerate(model.vocab.names):
            probs = torch.softmax(model.aspect_logits(q.aspects[0, a][None], name, grain)[0], dim=-1)
            top = int(probs.argmax())
            units = model.vocab.texts[name] if grain == "value" else model.vocab.grains[name][grain].units
            predicted[name] = {"value": str(units[top]), "p": round(float(probs[top]), 4)}
        explained = []
        if item_texts:
            d = model(model.tokenize(item_texts))
            assert model.gate is not None
            w = torch.softmax(model.gate(d.cls), dim=-1).double()  # [K, A]
            cls_part = d.cls.double() @ z_q  # [K]
            asp_part = torch.einsum("kah,h->ka", d.aspects.double(), z_q) * w  # [K, A]
            if model.fusion_scale is not None:  # fusion="scaled": z = h_cls + γ Σ_a w_a h_a
                asp_part = asp_part * float(model.fusion_scale.detach())
            for n, r in enumerate(rows):
                parts = {"cls": float(cls_part[n])}
                parts.update({name: float(asp_part[n, a]) for a, name in enumerate(model.vocab.names)})
                drivers = sorted(
                    (a for a in model.vocab.names if parts[a] > 0), key=lambda a: parts[a], reverse=True
                )
                explained.append(
                    {
                        "parts": parts,
                        "sum": float(sum(parts.values())),
                        "weights": {name: float(w[n, a]) for a, name in enumerate(model.vocab.names)},
                        "values": {name: values[name][r][1] for name in model.vocab.names if name in values},
                        "drivers": drivers,
                    }
                )
    return predicted, explained


def _norm(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def matched_aspects(query: str, values: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The (aspect, value text) pairs sharing a word with ``query`` → [{aspect, value, words}]."""
    asked = {_norm(w) for w in words(query) if w not in STOP_WORDS}
    out = []
    for aspect, value in values:
        shared = [w for w in words(value) if w not in STOP_WORDS and _norm(w) in asked]
        if shared:
            out.append({"aspect": aspect, "value": value, "words": shared})
    return out


def write_candidates(answers: Sequence[Answer], out: Path) -> Path:
    """The candidates for the cascade as Parquet: query (its number), text, rank, item, score, title,
    domain, category_path, brand, matched_aspects ("aspect: value"); written aside, renamed in."""
    rows = [
        {
            "query": n,
            "text": a.query,
            "rank": rank,
            "item": h.item,
            "score": h.score,
            "title": h.title,
            "domain": h.domain,
            "category_path": h.category_path,
            "brand": h.brand,
            "matched_aspects": [f"{m['aspect']}: {m['value']}" for m in h.matched],
        }
        for n, a in enumerate(answers)
        for rank, h in enumerate(a.hits, 1)
    ]
    frame = pd.DataFrame(rows)
    return files.write_file(out, lambda tmp: frame.to_parquet(tmp, index=False))


__all__ = ["Answer", "Hit", "QueryEncoder", "Searcher", "explain_hits", "matched_aspects", "write_candidates"]
