"""The world's impression log: pages of shown items around every click, from a hidden click model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from loaders.world.generate import generate_world
from loaders.world.layout import MANIFEST
from tests.test_world import TINY, digest

IMP = "visible/events/impressions.parquet"
TRUTH = "hidden/click_model.parquet"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imp") / "w"
    generate_world(TINY, out)
    return out


def test_every_click_has_its_page_of_shown_items(world: Path) -> None:
    imp = pd.read_parquet(world / IMP)
    assert list(imp.columns) == ["request", "user", "query", "item", "domain", "ts", "position", "clicked"]
    assert imp["position"].dtype == "int16" and imp["clicked"].dtype == bool
    k = TINY.impression_page_size
    pages = imp.groupby("request")
    assert (pages.size() == k).all() and (pages["clicked"].sum() == 1).all()
    assert (pages["position"].apply(lambda p: sorted(p) == list(range(k)))).all()
    assert (pages["item"].nunique() == k).all() and (pages["user"].nunique() == 1).all()
    clicked = imp[imp["clicked"]]
    ev = pd.read_parquet(world / "visible/events/interactions.parquet")
    se = pd.read_parquet(world / "visible/events/searches.parquet")
    rec, search = clicked[clicked["query"] == ""], clicked[clicked["query"] != ""]
    assert len(rec) == len(ev) and len(search) == len(se)
    key = ["user", "item", "ts"]
    assert rec[key].sort_values(key).to_numpy().tolist() == ev[key].sort_values(key).to_numpy().tolist()
    key = ["user", "query", "item", "ts"]
    assert search[key].sort_values(key).to_numpy().tolist() == se[key].sort_values(key).to_numpy().tolist()
    assert imp["ts"].dtype == ev["ts"].dtype
    item_domain = pd.read_parquet(world / "visible/edges/Item__IN_DOMAIN__Domain.parquet")
    dom = imp["item"].map(item_domain.set_index("head")["tail"])
    assert (dom == imp["domain"]).all()  # every shown item is in its page's domain
    assert set(rec["domain"]) <= set(ev["domain"])


def test_the_hidden_click_model_separates_clicks_from_the_rest(world: Path) -> None:
    imp = pd.read_parquet(world / IMP)
    truth = pd.read_parquet(world / TRUTH)
    assert truth["p_click"].dtype == "float32" and len(truth) == len(imp)
    merged = imp.merge(truth, on=["request", "item"], validate="one_to_one")
    assert merged["p_click"].between(0, 1).all()
    by = merged.groupby("clicked")["p_click"].mean()
    assert by[True] > 1.5 * by[False]
    clicked = merged[merged["clicked"]]
    counts = clicked["position"].value_counts()
    assert counts[0] > 1.5 * counts[TINY.impression_page_size - 1]  # clicks lean to the top


def test_no_impressions_leaves_every_other_file_unchanged(world: Path, tmp_path: Path) -> None:
    """Impressions draw from their own random stream: turning them off changes no other byte."""
    off = tmp_path / "off"
    generate_world(replace(TINY, impression_page_size=0), off)
    without, with_ = digest(off), digest(world)
    assert IMP not in without and TRUTH not in without
    assert {k: v for k, v in with_.items() if k not in (IMP, TRUTH, MANIFEST)} == {
        k: v for k, v in without.items() if k != MANIFEST
    }
    again = tmp_path / "again"
    generate_world(TINY, again)
    assert digest(again) == with_
