"""A generic triples CSV: ``head,relation,tail`` (+ ``head_label,tail_label,confidence,source``).

``relation`` must be a relation type of the schema (case and spaces forgiven: ``made_by`` reads
as ``MADE_BY``). A row's labels default to the schema's endpoints of its relation when only one
pair fits; otherwise the row must name them. ``confidence`` defaults to 1.0, ``source`` to
``triples:<file name>``. The same triple twice is kept once when the rows agree, refused when not.

Nodes: without a node file, every endpoint becomes a node of its label with ``name = id``, a
reference only: a node that exists keeps its name, even with ``--overwrite``. With ``nodes`` (a
CSV ``id,label[,name]``), only the listed nodes are created and a triple whose head or tail is not
listed under its label is refused. Ids are used as given (no prefix), so triples may point at
nodes another reader loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from graph.errors import SchemaError
from graph.schema import SCHEMA
from loaders.readers.dataset import Dataset
from loaders.readers.parsing import (
    Where,
    is_blank,
    parse_key,
    parse_numbers,
    parse_text,
    pick_columns,
    read_csv,
)

COLUMNS = {c: (c,) for c in ("head", "relation", "tail", "head_label", "tail_label", "confidence", "source")}
NODE_COLUMNS = {c: (c,) for c in ("id", "label", "name")}
TRIPLE_KEY = ["head_label", "head", "relation", "tail_label", "tail"]


@dataclass(frozen=True)
class TriplesReader:
    """Triples (+ an optional node list) → nodes and edges of any declared relation."""

    name: ClassVar[str] = "triples"
    sep: str | None = None
    nodes: Path | None = None

    def read(self, path: Path, *, domain: str | None = None) -> Dataset:
        """``domain`` is not used: a triple carries no business domain."""
        source = f"triples:{path.name}"
        where = Where(path)
        triples = _drop_repeats(_read_triples(path, where, self.sep, source), where)
        if self.nodes is None:
            ends = pd.concat(
                [
                    triples[["head_label", "head"]].set_axis(["label", "id"], axis=1),
                    triples[["tail_label", "tail"]].set_axis(["label", "id"], axis=1),
                ]
            ).drop_duplicates()
            node_list = ends.assign(name=ends["id"], source=source)
        else:
            node_list = read_nodes(self.nodes, self.sep).assign(source=source)
            _check_listed(triples, node_list, where, self.nodes)
        nodes = {
            str(lab): df.drop(columns="label").reset_index(drop=True)
            for lab, df in node_list.groupby("label")
        }
        edges = {
            (str(h), str(r), str(t)): df[["head", "tail", "confidence", "source"]].reset_index(drop=True)
            for (h, r, t), df in triples.groupby(["head_label", "relation", "tail_label"])
        }
        refs = frozenset(nodes) if self.nodes is None else frozenset()
        return Dataset(source=source, nodes=nodes, edges=edges, refs=refs)


def _read_triples(path: Path, where: Where, sep: str | None, source: str) -> pd.DataFrame:
    frame = read_csv(path, where, sep=sep, names=None)
    pick_columns(frame, where, COLUMNS, required=("head", "relation", "tail"))
    blank = pd.Series("", index=frame.index, dtype=object)
    rel = parse_text(frame["relation"], where, "relation").str.upper().str.replace(r"\s+", "_", regex=True)
    allowed = ", ".join(sorted(SCHEMA.rel_types))
    where.check(
        ~rel.isin(list(SCHEMA.rel_types)),
        frame["relation"],
        "relation",
        f"unknown relation type {{value!r}}; allowed: {allowed}",
    )
    conf = frame.get("confidence", blank)
    src = frame.get("source", blank)
    triples = pd.DataFrame(
        {
            "head": parse_key(frame["head"], where, "head"),
            "relation": rel,
            "tail": parse_key(frame["tail"], where, "tail"),
            "confidence": parse_numbers(conf.where(~is_blank(conf), "1"), where, "confidence", 0.0, 1.0),
            "source": src.where(~is_blank(src), source),
        }
    )
    hl, tl = frame.get("head_label", blank), frame.get("tail_label", blank)
    return _with_labels(triples, hl, tl, where)


def _with_labels(triples: pd.DataFrame, head: pd.Series, tail: pd.Series, where: Where) -> pd.DataFrame:
    """Each row's (head label, tail label): given, or the schema's only endpoint pair."""
    given = pd.DataFrame({"relation": triples["relation"], "hl": head, "tl": tail})
    combos = given.drop_duplicates()
    resolved: list[tuple[str, str]] = []
    for row, rel, hl, tl in combos.itertuples():
        try:
            resolved.append(SCHEMA.endpoints(rel, hl or None, tl or None))
        except SchemaError:
            pairs = SCHEMA.rel(rel).endpoints
            column = "head_label" if not hl or hl not in {h for h, _ in pairs} else "tail_label"
            allowed = ", ".join(f"({h})-[:{rel}]->({t})" for h, t in pairs)
            fits = sum(1 for h, t in pairs if hl in ("", h) and tl in ("", t))
            given_pair = f"({hl or '?'})-[:{rel}]->({tl or '?'}) matches {'several' if fits else 'none'} of"
            raise where.error(
                int(row), column, f"{given_pair} {allowed}; set {column} to one of them"
            ) from None
    combos = combos.assign(head_label=[h for h, _ in resolved], tail_label=[t for _, t in resolved])
    labels = given.merge(combos, on=["relation", "hl", "tl"], how="left")
    return triples.assign(
        head_label=labels["head_label"].to_numpy(), tail_label=labels["tail_label"].to_numpy()
    )


def _drop_repeats(triples: pd.DataFrame, where: Where) -> pd.DataFrame:
    """The same triple twice: kept once if the rows agree, else an error naming both rows."""
    distinct = triples[~triples.duplicated()]
    again = distinct.duplicated(TRIPLE_KEY)
    if again.any():
        row = int(distinct.index[int(again.to_numpy().argmax())])
        key = [str(distinct.at[row, c]) for c in TRIPLE_KEY]
        same = (distinct[TRIPLE_KEY] == pd.Series(key, index=TRIPLE_KEY)).all(axis=1).to_numpy()
        first = int(distinct.index[int(same.argmax())])
        column = next(
            c for c in ("confidence", "source") if repr(distinct.at[first, c]) != repr(distinct.at[row, c])
        )
        here, there = str(distinct.at[row, column]), str(distinct.at[first, column])
        raise where.error(
            row,
            column,
            f"duplicate triple {key[1]!r} -[:{key[2]}]-> {key[4]!r} (also {where.row(first)}) "
            f"with a different {column}: {here} here, {there} there",
        )
    return distinct


def read_nodes(path: Path, sep: str | None = None) -> pd.DataFrame:
    """A node list ``id,label[,name]`` (name defaults to id); labels checked against the schema."""
    where = Where(path)
    frame = read_csv(path, where, sep=sep, names=None)
    pick_columns(frame, where, NODE_COLUMNS, required=("id", "label"))
    labels = parse_text(frame["label"], where, "label")
    known = SCHEMA.data_labels()
    where.check(
        ~labels.isin(known), labels, "label", f"unknown label {{value!r}}; allowed: {', '.join(known)}"
    )
    ids = parse_key(frame["id"], where, "id")
    names = frame["name"].where(~is_blank(frame["name"]), ids) if "name" in frame else ids
    nodes = pd.DataFrame({"id": ids, "label": labels, "name": names})
    distinct = nodes[~nodes.duplicated()]
    again = distinct.duplicated(["label", "id"])
    where.check(again, distinct["id"], "id", "duplicate node {value!r} of this label with a different name")
    return distinct


def _check_listed(triples: pd.DataFrame, nodes: pd.DataFrame, where: Where, node_file: Path) -> None:
    listed = pd.MultiIndex.from_frame(nodes[["label", "id"]])
    for side in ("head", "tail"):
        ends = pd.MultiIndex.from_arrays([triples[f"{side}_label"], triples[side]])
        missing = ~ends.isin(listed)
        if missing.any():
            label = triples[f"{side}_label"].to_numpy()[missing.argmax()]
            where.check(
                missing, triples[side], side, f"{{value!r}} is not listed as a {label} in {node_file}"
            )
