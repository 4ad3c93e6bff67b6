"""The world corpus's intent queries: their marks, the ``intent`` query set and the intent grade."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd

from consumers.retrieval.corpus import NEEDS_FILE, electronics_corpus, match_intents, names_any, world_corpus
from graph.store import StoreConfig, open_store
from loaders.world.layout import WorldDir


def _names(text: str, names: list[str]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text, re.IGNORECASE) for n in names)


def test_intent_only_queries_name_no_clicked_category_and_their_qrels_hold_the_needed_items(
    world_store: tuple[Path, Path],
) -> None:
    world, graph = world_store
    with open_store(StoreConfig(path=graph)) as store:
        c = world_corpus(store, world, seed=3)
        intents = set(store.node_table("Intent")["id"])
    q, items = c.queries, c.items.set_index("item")
    assert c.notes == () and q["intent_only"].dtype == bool
    assert set(q.loc[q["intent"] != "", "intent"]) <= intents
    log = pd.read_parquet(WorldDir(world).visible("events", "searches.parquet"), columns=["query", "item"])
    log = log[log["item"].isin(items.index)].drop_duplicates()
    paths = (
        log.assign(path=log["item"].map(items["category_path"]))
        .groupby("query")["path"]
        .agg(lambda ps: sorted({n for p in ps for n in p}))
    )
    only = q[q["intent_only"]]
    assert len(only) > 0 and (only["intent"] != "").all()
    for query, text in zip(only["query"], only["text"], strict=True):
        assert not _names(text, paths[query]), (text, paths[query])
    # the intent set: intent-only queries among the held-out ones; test and cold unchanged
    held_out = set(c.select("test")["query"]) | set(c.select("cold")["query"])
    chosen = c.select("intent")
    assert len(chosen) > 0 and set(chosen["query"]) <= held_out and chosen["intent_only"].all()
    assert set(chosen["query"]) == set(only["query"]) & held_out
    cold = q["domain"] == c.cold_domain
    assert c.select("test").equals(q[(q["split"] == "test") & ~cold]) and c.select("cold").equals(q[cold])
    # grades: 2 for every click, 1 for the items of a category (or sub-category) the intent NEEDS
    rel = c.qrels.set_index(["query", "item"])["relevance"]
    assert (rel.loc[list(zip(log["query"], log["item"], strict=True))] == 2).all()
    needs = pd.read_parquet(WorldDir(world).hidden_for_evaluation("kg", NEEDS_FILE))
    needed = needs.groupby("head")["tail"].agg(set)
    added = 0
    for query, intent, split in zip(q["query"], q["intent"], q["split"], strict=True):
        if not intent:
            continue
        served = set(items.index[items["leaf"].isin(needed.get(intent, set()))])
        graded = set(rel.loc[query].index)
        clicked_leaves = set(items.loc[log.loc[log["query"] == query, "item"], "leaf"])
        beyond = served - set(items.index[items["leaf"].isin(clicked_leaves)])
        if split == "test":
            assert served <= graded
            added += len(beyond)
        else:  # training reads train/dev qrels: no grade from the hidden truth there
            assert not beyond & graded
    assert added > 0  # the intent grade reaches items beyond the clicked leaves


def test_a_world_without_the_needs_file_keeps_the_click_and_leaf_grades_and_says_so(
    world_store: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    world, graph = world_store
    old = tmp_path / "world"
    shutil.copytree(world, old)
    (old / "hidden" / "kg" / NEEDS_FILE).unlink()
    with open_store(StoreConfig(path=graph)) as store:
        full, fallback = world_corpus(store, world), world_corpus(store, old)
    assert fallback.notes and NEEDS_FILE in fallback.notes[0]
    assert fallback.queries.equals(full.queries)
    leaf = full.items.set_index("item")["leaf"]
    r = fallback.qrels.assign(leaf=fallback.qrels["item"].map(leaf))
    clicked = r.loc[r["relevance"] == 2, ["query", "leaf"]].drop_duplicates()
    ones = r[r["relevance"] == 1].merge(clicked, on=["query", "leaf"], how="left", indicator=True)
    assert (ones["_merge"] == "both").all()  # every grade 1 shares a clicked item's leaf
    assert len(full.qrels) > len(fallback.qrels)


def test_intent_names_match_whole_words_case_insensitively_and_the_longest_wins() -> None:
    intents = pd.DataFrame(
        {
            "id": ["int_cycling", "int_commute", "int_run", "int_xmas"],
            "name": ["cycling", "cycling to work", "running", "decorating for Christmas"],
        }
    )
    texts = pd.Series(
        [
            "what do I need for Cycling to Work",
            "cycling ideas",
            "running shoes for cycling to work",
            "overrunning budget",
            "DECORATING FOR CHRISTMAS checklist",
            "cheap tents",
        ],
        index=[10, 11, 12, 13, 14, 15],
    )
    got = match_intents(texts, intents)
    assert list(got.index) == list(texts.index)
    assert list(got) == ["int_commute", "int_cycling", "int_commute", "", "int_xmas", ""]
    assert match_intents(texts, intents.iloc[:0]).eq("").all()
    assert names_any("best Tents for camping", ["tents"]) and not names_any("contents", ["tents"])
    assert not names_any("anything", [])


def test_the_electronics_corpus_has_the_intent_columns_and_an_empty_intent_set() -> None:
    c = electronics_corpus()
    assert {"intent", "intent_only"} <= set(c.queries) and c.select("intent").empty
    assert (c.queries["intent"] == "").all() and not c.queries["intent_only"].any()
