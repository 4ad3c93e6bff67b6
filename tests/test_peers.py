"""`python -m bench.peers` parts, fast: the benchmark files RecBole reads hold exactly our split, and
scores made elsewhere are ranked by our evaluator exactly as the model's own (no RecBole here)."""

from __future__ import annotations

from argparse import Namespace
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.peers import SavedScores, recbole_config, score_rows
from bench.peers_files import benchmark_frames, read_inter, tokens, write_benchmark
from bench.peers_recbole import _scatter_module
from bench.peers_report import lightgcn_note, report
from gnn.rec.data import RecData
from gnn.rec.evaluate import evaluate_domain
from graph.errors import InputError
from loaders.readers.atomic import read_atomic


def tiny(cold: bool = False) -> RecData:
    """4 users, 6 items (items 4-5 in ``tiny:cold`` when ``cold``); user 3 has one fit row only."""
    n_items = 6
    item_domain = np.array([0, 0, 0, 0, 1, 1] if cold else [0] * n_items)
    fit = np.array([[0, 0], [0, 1], [0, 2], [1, 0], [1, 3], [2, 1], [2, 2], [2, 3], [3, 0]])
    test = np.array([[0, 4], [1, 5], [2, 4], [2, 5]] if cold else [[0, 3], [1, 1], [2, 0]])
    return RecData(
        user_ids=[f"tiny:u:{u}" for u in ("a", "b", "c", "d")],
        item_ids=[f"tiny:i:{i}" for i in range(10, 10 + n_items)],
        domains=["tiny", "tiny:cold"] if cold else ["tiny"],
        item_domain=item_domain,
        fit_user=fit[:, 0],
        fit_item=fit[:, 1],
        fit_ts=np.array([5, 3, 9, 1, 1, 7, 7, 2, 4]),  # ties: user b at ts 1, user c at ts 7
        test_user=test[:, 0],
        test_item=test[:, 1],
        item_x=np.zeros((n_items, 1), dtype=np.float32),
        entity_ids=[],
        entity_x=np.zeros((0, 1), dtype=np.float32),
        item_entity=np.zeros((2, 0), dtype=np.int64),
        kg_edges=np.zeros((3, 0), dtype=np.int64),
        relations=[],
    )


def pairs(data: RecData, users: np.ndarray, items: np.ndarray) -> Counter[tuple[str, str]]:
    u = tokens(data.user_ids, "tiny:u:")
    i = tokens(data.item_ids, "tiny:i:")
    return Counter((u[a], i[b]) for a, b in zip(users, items, strict=True))


def as_pairs(frame: pd.DataFrame) -> Counter[tuple[str, str]]:
    return Counter(zip(frame["user_id"], frame["item_id"], strict=True))


@pytest.mark.parametrize("cold", [False, True])
def test_benchmark_files_hold_exactly_our_split(tmp_path: Path, cold: bool) -> None:
    data = tiny(cold)
    root = write_benchmark(data, tmp_path, "tiny")
    files = {p: read_inter(root / f"peers.{p}.inter") for p in ("train", "valid", "test")}
    fit, test = pairs(data, data.fit_user, data.fit_item), pairs(data, data.test_user, data.test_item)
    assert as_pairs(files["train"]) == fit  # every fit row, nothing else, no test row
    assert as_pairs(files["test"]) == test
    assert not set(as_pairs(files["valid"])) - set(fit)  # valid is a slice of fit
    # one row per user with fit rows: their last by time, ties broken by item
    assert as_pairs(files["valid"]) == Counter(
        {("a", "12"): 1, ("b", "13"): 1, ("c", "12"): 1, ("d", "10"): 1}
    )
    assert (root / "peers.train.inter").read_text().splitlines()[0] == (
        "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    )
    users = read_atomic(root / "peers.user").values["user_id"].tolist()
    items = read_atomic(root / "peers.item").values["item_id"].tolist()
    assert users == ["a", "b", "c", "d"] and items == [str(i) for i in range(10, 16)]
    for part in files:  # RecBole's typed format, as our own atomic reader checks it
        assert read_atomic(root / f"peers.{part}.inter").types["rating"] == "float"


def test_ratings_and_timestamps_come_along_where_known() -> None:
    ratings = pd.DataFrame(
        {"user_id": ["a", "c"], "item_id": ["10", "14"], "rating": [4.0, 2.0], "timestamp": [9.0, 8.0]}
    )
    frames = benchmark_frames(tiny(cold=True), "tiny", ratings)
    train = frames["train"]
    keys = zip(train["user_id"], train["item_id"], strict=True)
    rating = dict(zip(keys, train["rating"], strict=True))
    assert rating[("a", "10")] == 4.0 and np.isnan(rating[("a", "11")])
    test = frames["test"]
    assert test.loc[(test["user_id"] == "c") & (test["item_id"] == "14"), "timestamp"].tolist() == [8.0]


def test_kg_files_are_copied_and_links_kept_to_our_items(tmp_path: Path) -> None:
    kg_dir = tmp_path / "wheel"
    kg_dir.mkdir()
    (kg_dir / "tiny.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\nm.a\tfilm.actor\tm.b\n")
    (kg_dir / "tiny.link").write_text("item_id:token\tentity_id:token\n10\tm.a\n99\tm.z\n")
    root = write_benchmark(tiny(), tmp_path / "out", "tiny", kg_dir=kg_dir)
    assert (root / "peers.kg").read_text() == (kg_dir / "tiny.kg").read_text()
    assert (root / "peers.link").read_text() == "item_id:token\tentity_id:token\n10\tm.a\n"


def test_ids_from_another_dataset_are_refused() -> None:
    with pytest.raises(InputError, match="does not start with"):
        tokens(["other:u:1"], "tiny:u:")


class Fixed:
    """A model whose scores are a fixed matrix over every item (with ties, to exercise them)."""

    name = "fixed"

    def __init__(self, data: RecData) -> None:
        self.data = data
        self.m = np.random.default_rng(0).integers(0, 4, (data.n_users, data.n_items)).astype(np.float32)

    def fit(self, data: RecData, targets: Sequence[str]) -> None:
        pass

    def scores(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        return torch.from_numpy(self.m[users.numpy()][:, self.data.domain_items(domain)])


@pytest.mark.parametrize(("cold", "domain"), [(False, "tiny"), (True, "tiny:cold")])
def test_saved_scores_rank_like_the_model_itself(cold: bool, domain: str) -> None:
    data = tiny(cold)
    model = Fixed(data)
    users = np.unique(data.test_in(domain)[0])
    matrix, _ = score_rows(model, data, domain, users)
    assert np.isneginf(matrix[:, np.flatnonzero(data.item_domain != data.domain_index(domain))]).all()
    saved = SavedScores("saved", users, matrix)
    saved.fit(data, [domain])
    assert evaluate_domain(saved, data, domain, batch_size=2) == evaluate_domain(model, data, domain)
    with pytest.raises(InputError, match="no saved scores"):
        saved.scores(torch.tensor([3]), domain)


def test_recbole_gets_our_shared_settings(tmp_path: Path) -> None:
    args = Namespace(seed=7, epochs=3)
    kgin = recbole_config("KGIN", args, tmp_path)
    assert kgin["context_hops"] == 2 and kgin["embedding_size"] == 64 and kgin["train_batch_size"] == 1024
    assert kgin["eval_step"] == 0 and kgin["eval_args"]["mode"] == "full" and kgin["seed"] == 7
    assert recbole_config("LightGCN", args, tmp_path)["n_layers"] == 2
    assert "n_layers" not in recbole_config("BPR", args, tmp_path)


def test_lightgcn_note_says_yes_or_no() -> None:
    rows = pd.DataFrame(
        {"model": ["LightGCN", "LightGCN"], "side": ["mokg", "RecBole"], "NDCG@10": [0.19, 0.2]}
    )
    assert "NDCG@10: yes (0.1900 vs 0.2000, -5.0%)" in str(lightgcn_note(rows))
    rows.loc[0, "NDCG@10"] = 0.17
    assert ": no (" in str(lightgcn_note(rows))
    assert lightgcn_note(rows.iloc[:1]) is None


def test_the_torch_scatter_shim_is_a_per_row_mean() -> None:
    src = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    index = torch.tensor([0, 2, 0])
    out = _scatter_module().scatter_mean(src=src, index=index, dim_size=4, dim=0)
    assert torch.equal(out.detach(), torch.tensor([[3.0, 4.0], [0.0, 0.0], [3.0, 4.0], [0.0, 0.0]]))
    out.sum().backward()
    assert torch.equal(src.grad, torch.tensor([[0.5, 0.5], [1.0, 1.0], [0.5, 0.5]]))  # type: ignore[arg-type]


def test_the_report_has_a_table_per_split_and_says_what_it_checked() -> None:
    metrics = {"NDCG@10": 0.1, "HR@10": 0.2, "NDCG@20": 0.15, "MRR": 0.05, "users": 3}
    rows = [
        {"split": s, "model": m, "side": side, **metrics, "s_per_epoch": e, "eval_users_per_s": 10.0}
        | {"peak_mb": 300.0, "recbole_own_ndcg10": own}
        for s in ("leave_last_out", "cold_items")
        for m, side, e, own in (
            ("MostPop", "mokg", float("nan"), float("nan")),
            ("LightGCN", "mokg", 1.0, float("nan")),
            ("LightGCN", "RecBole", 2.0, 0.1),
        )
    ]
    text = report(pd.DataFrame(rows), None, "python -m bench.peers --epochs 1")
    assert text.startswith("`python -m bench.peers --epochs 1`")
    assert (
        text.count("| model | side | NDCG@10 |") == 2
        and "| MostPop | mokg | 0.1000 | 0.2000 | 0.1500 | 0.0500 | – |" in text
    )
    assert "RecBole's own evaluator, same models and test file, NDCG@10: LightGCN 0.1000" in text
    assert text.count("within 5% of RecBole's LightGCN on NDCG@10: yes") == 1  # not on cold_items
    assert "cold_items: every test item is unseen" in text
