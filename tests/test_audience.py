"""Audience targeting (issue 7): each scorer's math on a hand-built graph in a real embedded store,
the metrics on hand-computed cases, the export guards, and the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import gnn.audience.export as export_module
from gnn.audience.base import AudienceError, load_campaign, make_targeter
from gnn.audience.export import ExportConfig, export_audience, manifest_path
from gnn.audience.gnn import GNNConfig, GNNTargeter
from gnn.audience.lookalike import ConversionLog, LookalikeTargeter
from gnn.audience.metrics import auc, audience_metrics
from gnn.audience.ppr import PPRConfig, PPRTargeter, personalised_pagerank
from gnn.audience.rule import RuleConfig
from gnn.audience.weak_labels import kg_footprint, weak_labels
from graph.store import GraphStore, StoreConfig, open_store

T0 = pd.Timestamp("2026-04-30")


def _graph(with_kg: bool = True) -> dict[str, Any]:
    """i_a NEEDS c_leaf (0.5); c_leaf, c_other under c_root; u1 bought it1, it2 (c_leaf), u2 it1,
    u3 it3 (c_other), u4 nothing. camp1 TARGETS i_a; camp2 TARGETS i_b."""
    nodes = {
        "Intent": pd.DataFrame({"id": ["i_a", "i_b"], "name": ["wedding", "honeymoon"]}),
        "Category": pd.DataFrame({"id": ["c_root", "c_leaf", "c_other"], "level": [0, 1, 1]}),
        "Item": pd.DataFrame({"id": ["it1", "it2", "it3"]}),
        "User": pd.DataFrame({"id": ["u1", "u2", "u3", "u4"]}),
        "Campaign": pd.DataFrame({"id": ["camp1", "camp2"], "budget": [2, 1]}),
        "Domain": pd.DataFrame({"id": ["d1"]}),
    }
    inter = pd.DataFrame(
        {
            "head": ["u1", "u1", "u2", "u3"],
            "tail": ["it1", "it2", "it1", "it3"],
            "ts": [T0, T0 - pd.Timedelta(days=30), T0, T0],
        }
    )
    edges: dict[Any, pd.DataFrame] = {
        ("User", "INTERACTED", "Item"): inter,
        ("Item", "BELONGS_TO", "Category"): pd.DataFrame(
            {"head": ["it1", "it2", "it3"], "tail": ["c_leaf", "c_leaf", "c_other"]}
        ),
        ("Category", "SUBCATEGORY_OF", "Category"): pd.DataFrame(
            {"head": ["c_leaf", "c_other"], "tail": ["c_root", "c_root"]}
        ),
        ("Campaign", "TARGETS", "Intent"): pd.DataFrame({"head": ["camp1", "camp2"], "tail": ["i_a", "i_b"]}),
        ("Campaign", "IN_DOMAIN", "Domain"): pd.DataFrame({"head": ["camp1"], "tail": ["d1"]}),
        ("User", "ACTIVE_IN", "Domain"): pd.DataFrame({"head": ["u1", "u2", "u3"], "tail": ["d1"] * 3}),
    }
    if with_kg:
        edges[("Intent", "NEEDS", "Category")] = pd.DataFrame(
            {"head": ["i_a", "i_b"], "tail": ["c_leaf", "c_other"], "confidence": [0.5, 1.0]}
        )
    return {"nodes": nodes, "edges": edges}


def _open(path: Path, with_kg: bool = True) -> GraphStore:
    store = open_store(StoreConfig(path=path), create=True)
    with store.run_context("test") as run_id:
        store.bulk_load(run_id=run_id, **_graph(with_kg))
    return store


@pytest.fixture
def kg_store(tmp_path: Path) -> Iterator[GraphStore]:
    store = _open(tmp_path / "g")
    yield store
    store.close()


def _scores(df: pd.DataFrame) -> dict[str, float]:
    return dict(zip(df["user_id"], df["score"].round(9), strict=True))


# ---- scorers -------------------------------------------------------------------------------------


def test_rule_scores_sum_of_path_confidence_products(kg_store: GraphStore) -> None:
    t = make_targeter("rule").fit(kg_store, RuleConfig(hops=3))
    ranked = t.score("camp1")
    # u1: two paths i_a-NEEDS(0.5)-c_leaf-it1/it2-u1; u2: one; u3 needs 5 hops; u4 none
    assert _scores(ranked) == {"u1": 1.0, "u2": 0.5, "u3": 0.0, "u4": 0.0}
    assert ranked["user_id"].tolist() == ["u1", "u2", "u3", "u4"]
    paths = t.explain("u1", "camp1")
    assert {p.ids for p in paths} == {("i_a", "c_leaf", "it1", "u1"), ("i_a", "c_leaf", "it2", "u1")}
    assert paths[0].relations == ("NEEDS", "BELONGS_TO", "INTERACTED") and paths[0].weight == 0.5


def test_rule_reaches_nobody_without_a_kg(tmp_path: Path) -> None:
    with _open(tmp_path / "g", with_kg=False) as store:
        ranked = make_targeter("rule").fit(store, None).score("camp1")
        assert (ranked["score"] == 0).all() and len(ranked) == 4


def test_unknown_campaign_and_method_are_clear_errors(kg_store: GraphStore) -> None:
    with pytest.raises(AudienceError, match=r"unknown campaign 'nope'.*camp1"):
        make_targeter("rule").fit(kg_store, None).score("nope")
    with pytest.raises(AudienceError, match="unknown targeting method"):
        make_targeter("magic")
    assert load_campaign(kg_store, "camp1").intents == ("i_a",)


def test_pagerank_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((6, 6)) * (rng.random((6, 6)) < 0.6)
    a = a + a.T
    np.fill_diagonal(a, 0)
    import scipy.sparse as sp

    r = np.array([1.0, 0, 0, 0, 0, 1.0]) / 2
    p = a / a.sum(axis=1, keepdims=True)
    exact = 0.2 * np.linalg.solve(np.eye(6) - 0.8 * p.T, r)  # π = α (I - (1-α) Pᵀ)⁻¹ r
    got = personalised_pagerank(sp.csr_matrix(a), r, alpha=0.2, tol=1e-14, max_iter=1000)
    assert np.allclose(got, exact, atol=1e-10) and abs(got.sum() - 1) < 1e-9


def test_ppr_ranks_by_closeness_to_the_intent(kg_store: GraphStore) -> None:
    t = PPRTargeter().fit(kg_store)
    s = _scores(t.score("camp1"))
    assert s["u1"] > s["u2"] > s["u3"] > s["u4"] == 0.0
    [path] = t.explain("u2", "camp1")  # one shortest path per intent (two tie at 3 hops here)
    assert (path.ids, path.relations) in {
        (("i_a", "c_leaf", "it1", "u2"), ("NEEDS", "BELONGS_TO", "INTERACTED")),
        (("i_a", "camp1", "d1", "u2"), ("TARGETS", "IN_DOMAIN", "ACTIVE_IN")),
    }
    assert 0 < path.weight <= 1


def test_weak_labels_use_kg_footprint_and_recency(kg_store: GraphStore) -> None:
    foot = kg_footprint(kg_store)
    assert set(map(tuple, foot[["intent", "category"]].values.tolist())) == {
        ("i_a", "c_leaf"),
        ("i_b", "c_other"),
    }
    inter = kg_store.edge_table(("User", "INTERACTED", "Item"), ["ts"]).set_axis(
        ["user", "item", "ts"], axis=1
    )
    belongs = kg_store.edge_table(("Item", "BELONGS_TO", "Category")).set_axis(["item", "category"], axis=1)
    y = weak_labels(inter, belongs, foot, half_life_days=30.0)
    got = {(u, i): round(v, 9) for u, i, v in y[["user", "intent", "y"]].itertuples(index=False)}
    # u1: it1 now (0.5 x 1) + it2 30 days ago (0.5 x 0.5)
    assert got == {("u1", "i_a"): 0.75, ("u2", "i_a"): 0.5, ("u3", "i_b"): 1.0}


def test_needs_on_a_parent_category_covers_its_subtree(tmp_path: Path) -> None:
    with _open(tmp_path / "g", with_kg=False) as store:
        with store.run_context("kg") as run_id:
            rows = [{"head": "i_a", "tail": "c_root", "confidence": 0.8}]
            store.upsert_edges("NEEDS", rows, run_id=run_id, head="Intent", tail="Category")
        foot = kg_footprint(store)
        assert sorted(foot["category"]) == ["c_leaf", "c_other", "c_root"] and set(foot["weight"]) == {0.8}


TINY_GNN = GNNConfig(dim=8, epochs=40, features=False, seed=3)


def test_gnn_learns_the_weak_links_and_is_seeded(kg_store: GraphStore) -> None:
    a = GNNTargeter().fit(kg_store, TINY_GNN)
    b = GNNTargeter().fit(kg_store, TINY_GNN)
    ra, rb = a.score("camp1"), b.score("camp1")
    assert ra.equals(rb) and len(ra) == 4
    s = _scores(ra)
    assert min(s["u1"], s["u2"]) > s["u3"]  # the users with i_a's weak label rank first
    assert a.info["positives"] == 3 and a.info["footprint"]["kg_intents"] == 2
    assert a.explain("u1", "camp1")[0].relations == ("INTERACTED", "BELONGS_TO")


def test_gnn_trains_on_user_sampled_graphs_when_users_exceed_the_batch(kg_store: GraphStore) -> None:
    cfg = GNNConfig(dim=8, epochs=40, features=False, seed=3, batch_users=2, label_users=3)
    a, b = GNNTargeter().fit(kg_store, cfg), GNNTargeter().fit(kg_store, cfg)
    assert a.info["full_batch"] is False and a.info["label_users"] == 3
    assert a.z["User"].shape == (4, 8)  # users with no id embedding still get one from their edges
    assert a.score("camp1").equals(b.score("camp1")) and len(a.score("camp1")) == 4


def test_user_sampler_keeps_only_the_batch_users_edges_renumbered() -> None:
    from gnn.audience.minibatch import UserSampler, adjacency

    inter = np.array([[0, 0, 1, 2, 2, 2], [0, 1, 1, 0, 1, 2]])  # (User, INTERACTED, Item)
    belongs = np.array([[0, 1, 2], [0, 0, 1]])  # (Item, BELONGS_TO, Category)
    sizes = {"User": 3, "Item": 3, "Category": 2}
    ui, ic = ("User", "INTERACTED", "Item"), ("Item", "BELONGS_TO", "Category")
    sampler = UserSampler({ui: inter, ic: belongs}, sizes)
    batch = sampler.batch(np.array([0, 2]))
    assert batch[ui].tolist() == [[0, 0, 1, 1, 1], [0, 1, 0, 1, 2]]  # user 2 became row 1
    assert batch[ic].tolist() == belongs.tolist() and inter[0].tolist() == [0, 0, 1, 2, 2, 2]
    dense = adjacency(inter, 3, 3).to_dense().numpy()  # adj_t[item, user]
    assert dense[:, 2].tolist() == [1.0, 1.0, 1.0] and dense[2].tolist() == [0.0, 0.0, 1.0]


def test_gnn_without_kg_or_text_says_it_has_nothing_to_learn(tmp_path: Path) -> None:
    with (
        _open(tmp_path / "g", with_kg=False) as store,
        pytest.raises(AudienceError, match="no user–intent labels"),
    ):
        GNNTargeter().fit(store, TINY_GNN)


def _log() -> ConversionLog:
    windows = pd.DataFrame(
        {
            "id": ["camp2", "camp0", "camp1"],
            "start": pd.to_datetime(["2026-05-01", "2026-05-20", "2026-06-05"]),
            "end": pd.to_datetime(["2026-05-31", "2026-06-19", "2026-07-05"]),
        }
    )
    conv = pd.DataFrame({"campaign": ["camp2", "camp0", "camp1"], "user": ["u1", "u3", "u2"]})
    return ConversionLog(conv, windows)


def test_lookalike_seed_is_only_earlier_finished_campaigns() -> None:
    seed = _log().seed_for("camp1")
    assert seed["campaign"].tolist() == ["camp2"]  # camp0 still runs; camp1's own never used
    assert _log().seed_for("camp2").empty


def test_lookalike_ranks_by_cosine_to_the_seed_centroid(kg_store: GraphStore) -> None:
    gnn = GNNTargeter().fit(kg_store, TINY_GNN)
    gnn.z["User"] = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    gnn.z["Intent"] = np.array([[1.0, 0.0], [0.0, 1.0]])
    ranked = LookalikeTargeter(_log(), gnn).fit(kg_store).score("camp1")  # seed: u1 (camp2)
    assert ranked["user_id"].tolist() == ["u1", "u2", "u3", "u4"]
    assert _scores(ranked)["u3"] == 0.0 and _scores(ranked)["u4"] == -1.0
    with pytest.raises(AudienceError, match="no seed"):
        LookalikeTargeter(_log(), gnn).fit(kg_store).score("camp2")


# ---- metrics ------------------------------------------------------------------------------------


def test_metrics_on_a_hand_computed_ranking() -> None:
    ranked = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "score": [4.0, 3.0, 2.0, 1.0]})
    m = audience_metrics(ranked, {"a", "c"}, k=2)
    assert (m.hits, m.precision, m.recall, m.lift) == (1, 0.5, 0.5, 1.0)
    assert m.auc == 0.75  # a>b, a>d, c>d; c<b
    assert auc(np.ones(4), np.array([True, False, True, False])) == 0.5
    perfect = audience_metrics(ranked, {"a"}, k=1)
    assert perfect.lift == 4.0 and perfect.auc == 1.0


# ---- exports ------------------------------------------------------------------------------------

SALT = "pepper-and-salt-0123"  # a salt of real length (16+ characters)


@pytest.fixture
def floor2(monkeypatch: pytest.MonkeyPatch) -> None:
    """This deployment's floor on audience size is 2 (the test graph has 4 users)."""
    monkeypatch.setenv("MOKG_AUDIENCE_MIN_SIZE", "2")


def _export(store: GraphStore, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "campaign": "camp1",
        "size": 3,
        "method": "rule",
        "out": tmp_path / "out" / "aud.csv",
        "min_size": 2,
        "audit_log": tmp_path / "audit.jsonl",
        **kw,
    }
    t = make_targeter(args["method"]).fit(store, RuleConfig(hops=3))
    return export_audience(store, t, RuleConfig(hops=3), ExportConfig(**args))


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


@pytest.mark.usefixtures("floor2")
def test_export_writes_ids_scores_manifest_and_audit(kg_store: GraphStore, tmp_path: Path) -> None:
    manifest = _export(kg_store, tmp_path)
    df = pd.read_csv(tmp_path / "out" / "aud.csv")
    assert list(df.columns) == ["user_id", "score", "rank", "method", "graph_version"]
    assert df["user_id"].tolist() == ["u1", "u2", "u3"] and df["score"].tolist() == [1.0, 0.5, 0.0]
    on_disk = json.loads(manifest_path(tmp_path / "out" / "aud.csv").read_text())
    assert (
        on_disk["count"] == 3 and on_disk["campaign"] == "camp1" and on_disk["run_id"] == manifest["run_id"]
    )
    assert on_disk["score_distribution"]["max"] == 1.0 and on_disk["method_config"]["hops"] == 3
    assert on_disk["graph_version"]["run_id"].startswith("test-")
    _export(kg_store, tmp_path, out=tmp_path / "out" / "aud2.parquet", hash_salt=SALT, with_attributes=True)
    hashed = pd.read_parquet(tmp_path / "out" / "aud2.parquet")
    assert hashed["user_id"][0] == hashlib.sha256(f"{SALT}:u1".encode()).hexdigest()
    assert hashed["active_domains"].tolist() == ["d1", "d1", "d1"]
    assert "pepper" not in manifest_path(tmp_path / "out" / "aud2.parquet").read_text()
    log = _audit(tmp_path)
    assert [e["status"] for e in log] == ["started", "written", "started", "written"]
    assert log[0]["run_id"] == log[1]["run_id"] == manifest["run_id"] != log[2]["run_id"]


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"size": 1}, "below the minimum of 2"),
        ({"size": 3, "min_size": 5}, "below the minimum of 5"),
        ({"size": 1, "min_size": 1}, "below this deployment's floor of 2"),
        ({"size": -5, "min_size": -10}, "sizes must be positive"),
        ({"size": 0}, "sizes must be positive"),
        ({"hash_salt": ""}, "--hash-salt has 0 characters; give a secret of at least 16"),
        ({"hash_salt": "pepper"}, "at least 16"),
        ({"campaign": "nope"}, "unknown campaign 'nope'"),
        ({"out": Path("aud.txt")}, "must end in .parquet or .csv"),
    ],
)
@pytest.mark.usefixtures("floor2")
def test_export_guards_refuse_and_audit(
    kg_store: GraphStore, tmp_path: Path, kw: dict[str, Any], words: str
) -> None:
    with pytest.raises(AudienceError, match=words):
        _export(kg_store, tmp_path, **kw)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert [e["status"] for e in _audit(tmp_path)] == ["started", "refused"]


@pytest.mark.parametrize("floor", ["0", "-3", "many", ""])
def test_a_bad_deployment_floor_is_refused(
    kg_store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, floor: str
) -> None:
    monkeypatch.setenv("MOKG_AUDIENCE_MIN_SIZE", floor)
    with pytest.raises(AudienceError, match=r"MOKG_AUDIENCE_MIN_SIZE.*not a positive integer"):
        _export(kg_store, tmp_path, size=4, min_size=None)


def test_the_floor_defaults_to_100(
    kg_store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOKG_AUDIENCE_MIN_SIZE", raising=False)
    with pytest.raises(AudienceError, match="below the minimum of 100"):
        _export(kg_store, tmp_path, size=4, min_size=None)
    with pytest.raises(AudienceError, match="below this deployment's floor of 100"):
        _export(kg_store, tmp_path, size=4, min_size=2)


@pytest.mark.usefixtures("floor2")
def test_export_to_an_unwritable_path_is_refused(kg_store: GraphStore, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(AudienceError, match="afile is a file, not a folder"):
        _export(kg_store, tmp_path, out=tmp_path / "afile" / "aud.csv")


@pytest.mark.usefixtures("floor2")
def test_an_existing_audience_is_replaced_only_with_overwrite(kg_store: GraphStore, tmp_path: Path) -> None:
    out = tmp_path / "out" / "aud.csv"
    out.parent.mkdir()
    out.write_text("someone else's file\n")
    with pytest.raises(AudienceError, match="exists; pass --overwrite"):
        _export(kg_store, tmp_path)
    assert out.read_text() == "someone else's file\n" and not manifest_path(out).exists()
    _export(kg_store, tmp_path, overwrite=True)
    assert pd.read_csv(out)["user_id"].tolist() == ["u1", "u2", "u3"]


@pytest.mark.usefixtures("floor2")
def test_the_manifest_never_describes_another_file(
    kg_store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out" / "aud.csv"
    first = _export(kg_store, tmp_path)
    on_disk = json.loads(manifest_path(out).read_text())
    assert on_disk["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    real_replace = os.replace

    def stop_before_the_manifest(src: Any, dst: Any) -> None:
        if str(dst).endswith(".manifest.json"):
            raise KeyboardInterrupt  # stopped between the two renames
        real_replace(src, dst)

    monkeypatch.setattr("gnn.audience.export.os.replace", stop_before_the_manifest)
    with pytest.raises(KeyboardInterrupt):
        _export(kg_store, tmp_path, size=2, overwrite=True)
    assert len(pd.read_csv(out)) == 2 and first["count"] == 3
    assert not manifest_path(out).exists()  # not the old manifest beside the new audience


@pytest.mark.usefixtures("floor2")
def test_special_files_are_refused_for_the_audience_and_the_audit_log(
    kg_store: GraphStore, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(AudienceError, match="it is a FIFO"):
        _export(kg_store, tmp_path, out=fifo, overwrite=True)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(AudienceError, match="cannot append to the audit log /dev/null"):
        _export(kg_store, tmp_path, audit_log=Path("/dev/null"))
    assert not (tmp_path / "out").exists()


KILLED = """
import os, signal, sys
from pathlib import Path
from gnn.audience.export import ExportConfig, export_audience
from graph.store import StoreConfig, open_store

class Killed:
    name = "rule"
    def score(self, campaign):
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of the export

root = Path(sys.argv[1])
store = open_store(StoreConfig(path=root / "g"))
config = ExportConfig("camp1", 3, "rule", root / "aud.csv", min_size=2, audit_log=root / "audit.jsonl")
export_audience(store, Killed(), None, config)
"""


def test_a_killed_export_leaves_its_started_audit_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    _open(tmp_path / "g").close()
    env = {**os.environ, "MOKG_AUDIENCE_MIN_SIZE": "2", "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path)], env=env, timeout=120)
    assert done.returncode == -9
    [entry] = _audit(tmp_path)
    assert entry["status"] == "started" and entry["campaign"] == "camp1" and entry["run_id"]
    assert not (tmp_path / "aud.csv").exists()


@pytest.mark.usefixtures("floor2")
def test_an_export_killed_after_its_rename_is_audited_as_written_by_the_next_attempt(
    kg_store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = export_module.append_audit

    def dies_before_written(log: Path, entry: dict[str, Any]) -> None:
        if entry["status"] == "written":
            raise SystemExit(-9)  # the process dies between the rename and its outcome line
        real(log, entry)

    monkeypatch.setattr(export_module, "append_audit", dies_before_written)
    with pytest.raises(SystemExit):
        _export(kg_store, tmp_path)
    monkeypatch.setattr(export_module, "append_audit", real)
    assert [e["status"] for e in _audit(tmp_path)] == ["started"]  # as a SIGKILL there leaves it
    assert (tmp_path / "out" / "aud.csv").exists()
    with pytest.raises(AudienceError, match="--overwrite"):
        _export(kg_store, tmp_path)
    first, recovered, *rest = _audit(tmp_path)
    assert recovered["run_id"] == first["run_id"] and recovered["status"] == "written"
    assert recovered["recovered"] is True and recovered["count"] == 3
    assert [e["status"] for e in rest] == ["started", "refused"]
    _export(kg_store, tmp_path, overwrite=True)  # once closed, a run is never closed twice
    assert [e["status"] for e in _audit(tmp_path)][2:] == ["started", "refused", "started", "written"]


@pytest.mark.usefixtures("floor2")
def test_an_interrupted_export_leaves_nothing(
    kg_store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_then_crash(df: pd.DataFrame, path: Path, suffix: str) -> None:
        path.write_text("user_id,score\nu1,")
        raise KeyboardInterrupt

    monkeypatch.setattr("gnn.audience.export._write_table", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _export(kg_store, tmp_path)
    assert list((tmp_path / "out").iterdir()) == []  # no target, no manifest, no temp file
    assert [e["status"] for e in _audit(tmp_path)] == ["started", "failed"]


# ---- CLI -------------------------------------------------------------------------------------------


def test_cli_export_and_its_guards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mokg.cli import app

    _open(tmp_path / "g").close()
    runner = CliRunner()
    base = ["--path", str(tmp_path / "g"), "audience", "export", "-c", "camp1", "-m", "rule"]
    audit = ["--audit-log", str(tmp_path / "audit.jsonl")]
    monkeypatch.setenv("MOKG_AUDIENCE_MIN_SIZE", "3")
    ok = runner.invoke(
        app, [*base, "--size", "3", "--min-size", "3", "--out", str(tmp_path / "a.csv"), *audit]
    )
    assert ok.exit_code == 0, ok.output
    assert "wrote 3 users of camp1 (rule)" in ok.output and (tmp_path / "a.csv").exists()
    again = runner.invoke(
        app, [*base, "--size", "3", "--min-size", "3", "--out", str(tmp_path / "a.csv"), *audit]
    )
    assert isinstance(again.exception, AudienceError) and "--overwrite" in str(again.exception)
    replaced = [*base, "--size", "4", "--out", str(tmp_path / "a.csv"), "--overwrite", *audit]
    assert runner.invoke(app, replaced).exit_code == 0 and len(pd.read_csv(tmp_path / "a.csv")) == 4
    monkeypatch.delenv("MOKG_AUDIENCE_MIN_SIZE")
    refused = {
        ("--size", "3"): "minimum of 100",
        ("--size", "1", "--min-size", "1"): "below this deployment's floor of 100",
        ("--size", "-5", "--min-size", "-10"): "sizes must be positive",
        ("--size", "200", "--hash-salt", ""): "at least 16",
        ("--size", "200", "-c", "zzz"): "unknown campaign",
    }
    for extra, words in refused.items():
        r = runner.invoke(app, [*base, *extra, "--out", str(tmp_path / "b.csv"), *audit])
        assert isinstance(r.exception, AudienceError) and words in str(r.exception), (extra, r.output)
        assert not (tmp_path / "b.csv").exists()
    statuses = [e["status"] for e in _audit(tmp_path)]
    assert statuses == ["started", "written", "started", "refused", "started", "written"] + [
        "started",
        "refused",
    ] * len(refused)
    shown = runner.invoke(
        app, ["--path", str(tmp_path / "g"), "audience", "score", "-c", "camp1", "-m", "ppr"]
    )
    assert shown.exit_code == 0 and "u1" in shown.output


@pytest.mark.slow
def test_eval_audience_end_to_end_on_a_tiny_world(tmp_path: Path) -> None:
    from loaders.world.config import world_config
    from loaders.world.generate import generate_world
    from mokg.cli import app

    cfg = world_config("demo", seed=7, n_users=300, n_items=400, n_campaigns=4, chunk_users=120)
    generate_world(cfg, tmp_path / "w")
    args = ["eval", "audience", "--world", str(tmp_path / "w"), "--work", str(tmp_path / "work")]
    args += ["--out", str(tmp_path / "res"), "--no-features", "--epochs", "20", "--seed", "5"]
    r = CliRunner().invoke(app, [*args, "--method", "rule", "--method", "ppr", "--method", "gnn"])
    assert r.exit_code == 0, r.output
    assert "command: mokg" in r.output and "seed: 5" in r.output
    summary = pd.read_csv(tmp_path / "res" / "summary.csv")
    assert set(zip(summary["method"], summary["condition"], strict=True)) == {
        (m, c) for m in ("rule", "ppr", "gnn") for c in ("none", "truth")
    }
    truth_rule = summary[(summary["method"] == "rule") & (summary["condition"] == "truth")]
    assert truth_rule["AUC"].iloc[0] > 0.5  # the KG carries real signal
    assert json.loads((tmp_path / "res" / "summary.json").read_text())["seed"] == 5


def _add_declared_kg(store: GraphStore) -> None:
    """A KG a user brought: i_a SUITS (a declared type) entity e1, which item it3 is SAME_AS, so
    u3 (who bought it3) is 3 hops from camp1's intent only through that KG."""
    from graph.schema import external_relation

    suits = external_relation("SUITS", [("Intent", "Entity")], origin="x.suits")
    with store.run_context("kg") as run_id:
        store.bulk_load(
            run_id=run_id,
            nodes={"Entity": pd.DataFrame({"id": ["e1"]})},
            edges={
                ("Intent", "SUITS", "Entity"): pd.DataFrame(
                    {"head": ["i_a"], "tail": ["e1"], "confidence": [1.0]}
                ),
                ("Item", "SAME_AS", "Entity"): pd.DataFrame(
                    {"head": ["it3"], "tail": ["e1"], "confidence": [1.0]}
                ),
            },
            relations=[suits],
        )


def test_rule_and_ppr_walk_the_relation_types_a_loaded_kg_declared(kg_store: GraphStore) -> None:
    _add_declared_kg(kg_store)
    rule = make_targeter("rule").fit(kg_store, RuleConfig(hops=3))
    assert _scores(rule.score("camp1"))["u3"] == 1.0  # i_a-SUITS-e1-SAME_AS-it3-INTERACTED-u3
    assert [p.relations for p in rule.explain("u3", "camp1")] == [("SUITS", "SAME_AS", "INTERACTED")]
    closed = make_targeter("rule").fit(kg_store, RuleConfig(hops=3, store_kg=False))
    assert _scores(closed.score("camp1"))["u3"] == 0.0
    ppr = make_targeter("ppr").fit(kg_store, None)
    without = make_targeter("ppr").fit(kg_store, PPRConfig(store_kg=False))
    with_kg, no_kg = _scores(ppr.score("camp1")), _scores(without.score("camp1"))
    assert with_kg["u3"] > no_kg["u3"]  # the only score the KG can raise much: u3's


def test_the_rule_query_refuses_a_walk_type_the_store_does_not_have(kg_store: GraphStore) -> None:
    from graph.errors import QueryError

    with pytest.raises(
        QueryError, match=r"parameter 'walk' must be rel_types.*unknown relation type 'LIKES'"
    ):
        kg_store.run("audience_rule", {"campaign_id": "camp1", "walk": "NEEDS|LIKES"})
