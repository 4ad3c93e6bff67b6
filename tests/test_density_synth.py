"""Issue 19's synthetic users: a fitted density saved and loaded (sha256-checked), the store's users
as density data, and `mokg density synthesize` on a copy of the small world's store. Fits are tiny
(few pairs, ODE steps and epochs); no timing is asserted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from consumers.density.config import DensityConfig
from consumers.density.data import load_dataset
from consumers.density.model import DiffusionDensity, fit
from consumers.density.persist import load_density
from consumers.density.users import user_features
from gnn.foundation.serve import write_representations
from graph.errors import InputError
from graph.store import StoreConfig, open_store
from mokg.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = DensityConfig(steps=20, pairs=200, epochs=5, likelihood_steps=8, width=16)
TINY_FLAGS = ["--pairs", "200", "--steps", "20", "--epochs", "5", "--width", "16"]


# ---- save / load ---------------------------------------------------------------------------------


def _fitted() -> tuple[DiffusionDensity, np.ndarray]:
    data = np.random.default_rng(0).normal(size=(120, 3))
    return fit(data, TINY), data


def test_a_saved_model_loads_back_to_the_same_samples_likelihood_and_units(tmp_path: Path) -> None:
    model, data = _fitted()
    mean, std = np.array([1.0, 2.0, 3.0]), np.array([0.5, 2.0, 4.0])
    path = tmp_path / "m.safetensors"
    model.save(path, feature_names=["a", "b", "c"], mean=mean, std=std, info={"graph_version": "g1"})
    saved = load_density(path)
    assert saved.feature_names == ("a", "b", "c") and saved.info["graph_version"] == "g1"
    assert saved.model.config == TINY and saved.model.losses == pytest.approx(model.losses)
    assert torch.equal(saved.model.sample(50, seed=3), model.sample(50, seed=3))
    assert torch.equal(saved.model.data, model.data)
    assert torch.equal(saved.model.ode_sample(20, seed=3), model.ode_sample(20, seed=3))
    points = data[:10]
    assert torch.equal(saved.model.log_prob(points), model.log_prob(points))
    z = saved.model.sample(4, seed=1).numpy()
    np.testing.assert_allclose(saved.unstandardise(z), z * std + mean)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_a_corrupted_or_missing_model_file_is_refused_in_one_line(tmp_path: Path) -> None:
    model, _ = _fitted()
    path = tmp_path / "m.safetensors"
    model.save(path)
    raw = bytearray(path.read_bytes())
    flipped = tmp_path / "flipped.safetensors"
    raw[-5] ^= 0xFF  # a byte of the last tensor
    flipped.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="does not match its sha256") as exc:
        load_density(flipped)
    assert "\n" not in str(exc.value)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="not a readable density model"):
        load_density(truncated)
    with pytest.raises(InputError, match="is not a file"):
        load_density(tmp_path / "absent.safetensors")
    with pytest.raises(InputError, match="3 entries"):
        model.save(tmp_path / "x.safetensors", feature_names=["only-one"])


# ---- users as density data ------------------------------------------------------------------------


def test_user_features_of_the_world_store_count_each_users_activity(world_store: tuple[Path, Path]) -> None:
    _, graph = world_store
    with open_store(StoreConfig(path=graph)) as store:
        ids, x, names = user_features(store)
        users = sorted(store.node_table("User")["id"].astype(str))
        searched = store.edge_table(("User", "SEARCHED", "Query"))["head"].value_counts()
        inter = store.edge_table(("User", "INTERACTED", "Item"), ["count", "domain", "kind"])
        domains = sorted(inter["domain"].unique())
    assert ids == users and x.shape == (len(users), len(names)) and len(users) == 300
    assert {"domains", "events", "purchases", "categories", "searches"} <= set(names)
    assert {f"items_{d}" for d in domains} >= {n for n in names if n.startswith("items_")}
    assert len([n for n in names if n.startswith("items_")]) >= 2  # the world has several domains
    assert not any(n.startswith("attr_") for n in names)  # generated users carry no attributes
    assert (x.std(axis=0) > 0).all() and (x >= 0).all() and np.array_equal(x, np.round(x))
    frame = pd.DataFrame(x, index=ids, columns=names)
    np.testing.assert_array_equal(frame["searches"], searched.reindex(ids, fill_value=0))
    events = inter.groupby("head")["count"].sum().reindex(ids, fill_value=0)
    np.testing.assert_array_equal(frame["events"], events)
    purchases = inter[inter["kind"] == "purchase"]["head"].value_counts().reindex(ids, fill_value=0)
    np.testing.assert_array_equal(frame["purchases"], purchases)


def test_user_features_read_numeric_attributes_and_drop_constant_columns(tmp_path: Path) -> None:
    with open_store(StoreConfig(path=tmp_path / "g"), create=True) as store:
        with pytest.raises(InputError, match="the store has no users"):
            user_features(store)
        rows = [
            {"id": "u1", "attributes": json.dumps({"age": 20, "gender": "F", "zone": 1})},
            {"id": "u2", "attributes": json.dumps({"age": 35, "zone": 1, "vip": True})},
            {"id": "u3", "attributes": json.dumps({"zone": 1})},
            {"id": "u4"},
        ]
        with store.run_context("test") as run_id:
            store.upsert_nodes("User", rows, run_id=run_id)
        ids, x, names = user_features(store)
        assert ids == ["u1", "u2", "u3", "u4"] and names == [
            "attr_age"
        ]  # zone: constant; text, bool: left out
        np.testing.assert_array_equal(x[:, 0], [20.0, 35.0, 27.5, 27.5])  # missing: the median
        with pytest.raises(InputError, match="do not differ in any feature"):
            user_features(store, attributes=False)
        assert user_features(store, vector_components=2).names == ["attr_age"]  # no vectors: none added
        vectors = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
        reps = pd.DataFrame(
            {"kind": "user", "id": ["u1", "u2", "u3"], "domain": "d", "vector": list(vectors)}
        ).assign(model_hash="h1", graph_version="g1")
        write_representations(store, reps)
        ids, x, names = user_features(store, vector_components=2)
    assert names == ["attr_age", "vec_0", "vec_1"] and x[3, 1:].tolist() == [0.0, 0.0]  # u4: no vector
    np.testing.assert_allclose(x[:3, 1:].sum(axis=0), 0.0, atol=1e-9)  # centred principal components


# ---- mokg density synthesize ---------------------------------------------------------------------


def _copy(world_store: tuple[Path, Path], tmp_path: Path) -> Path:
    graph = tmp_path / "graph"
    shutil.copytree(world_store[1], graph)
    return graph


def test_cli_synthesize_writes_n_synthetic_users_and_its_checks(
    world_store: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOKG_AUDIENCE_MIN_SIZE", raising=False)
    graph, out, saved = _copy(world_store, tmp_path), tmp_path / "users.parquet", tmp_path / "m.safetensors"
    args = ["--path", str(graph), "density", "synthesize", "--n", "150", "--out", str(out), *TINY_FLAGS]
    result = CliRunner().invoke(app, [*args, "--seed", "1", "--save-model", str(saved)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    with open_store(StoreConfig(path=graph)) as store:
        names = user_features(store).names
    assert len(frame) == 150 and list(frame.columns) == names
    assert (frame.dtypes == "int64").all() and (frame >= 0).all().all()  # counts: rounded, never negative
    stamp = json.loads(pq.read_schema(out).metadata[b"mokg"])
    assert stamp["source_users"] == 300 and stamp["config"]["seed"] == 1 and stamp["n"] == 150
    assert "source: 300 users (240 fit, 60 held out)" in result.output
    assert "memorisation: median NN-distance ratio" in result.output and "exact copies" in result.output
    assert "marginals (KS statistic, mean / max over columns): synthetic vs train users" in result.output
    assert "correlations (max |Δ|): synthetic vs train users" in result.output
    model = load_density(saved)
    assert list(model.feature_names) == names and model.model.config.pairs == 200
    helped = CliRunner().invoke(app, ["density", "synthesize", "--help"])
    assert all(w in helped.output for w in ("--min-users", "--save-model", "--eps", "Examples"))


def test_cli_synthesize_is_refused_below_the_minimum_and_writes_nothing(
    world_store: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOKG_AUDIENCE_MIN_SIZE", raising=False)
    graph, out = _copy(world_store, tmp_path), tmp_path / "out" / "users.parquet"
    base = ["--path", str(graph), "density", "synthesize", "--n", "10", "--out", str(out), *TINY_FLAGS]
    runner = CliRunner()
    refused = {
        ("--min-users", "301"): "the store has 300 users, fewer than the minimum of 301",
        ("--min-users", "50"): "below this deployment's floor of 100",
        ("--n", "0"): "--n must be at least 1",
    }
    for extra, words in refused.items():
        r = runner.invoke(app, [*base, *extra])
        assert r.exit_code != 0 and isinstance(r.exception, InputError), (extra, r.output)
        assert words in str(r.exception) and "\n" not in str(r.exception), (extra, str(r.exception))
    monkeypatch.setenv("MOKG_AUDIENCE_MIN_SIZE", "400")  # the deployment's floor counts too
    r = runner.invoke(app, base)
    assert isinstance(r.exception, InputError) and "minimum of 400" in str(r.exception)
    assert not out.exists() and not (out.parent.exists() and list(out.parent.iterdir()))


def test_eval_density_reads_the_stores_users_as_a_data_set(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    graph, out = _copy(world_store, tmp_path), tmp_path / "eval"
    args = ["--path", str(graph), "eval", "density", "--datasets", "users", "--methods", "diffusion,kde"]
    args += ["--n", "0", "--sample-size", "200", "--steps", "20", "--pairs", "200", "--epochs", "3"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, str(result.exception)
    table = pd.read_csv(out / "density_users.csv")
    assert list(table["method"]) == ["diffusion", "kde"] and set(table["dataset"]) == {"users"}
    with open_store(StoreConfig(path=graph)) as store:
        assert int(table["dim"].iloc[0]) == len(user_features(store).names)
    md = (out / "density_users.md").read_text()
    assert md.startswith("`mokg eval density --datasets users --methods diffusion,kde --n 0")
    assert "--steps 20 --pairs 200 --epochs 3`" in md.splitlines()[0]


def test_the_users_data_set_needs_a_store() -> None:
    with pytest.raises(InputError, match="read from a store"):
        load_dataset("users", None, 0)
