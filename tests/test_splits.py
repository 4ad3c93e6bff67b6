"""Splits of interactions: tiny frames with known answers, then random frames checked for the rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graph.errors import InputError
from loaders.splits import (
    LeakageError,
    Split,
    cold_items_split,
    cold_start_split,
    leave_last_out,
    temporal_split,
)


def frame(rows: list[tuple[str, str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "item", "ts", "domain"])


def parts(split: Split) -> dict[str, set[tuple[str, str]]]:
    f = split.frame
    return {
        name: set(zip(f["user"].iloc[idx], f["item"].iloc[idx], strict=True))
        for name, idx in (("train", split.train), ("val", split.val), ("test", split.test))
    }


def assert_partition(split: Split, n: int) -> None:
    every = np.sort(np.concatenate([split.train, split.val, split.test]))
    assert np.array_equal(every, np.arange(n))


def random_frame(rng: np.random.Generator) -> pd.DataFrame:
    n_users, n_items = int(rng.integers(1, 8)), int(rng.integers(1, 10))
    pairs = [(f"u{u}", f"i{i}") for u in range(n_users) for i in range(n_items) if rng.random() < 0.5]
    ts = rng.integers(0, 6, len(pairs))  # few distinct times: many ties
    dom = rng.choice(["a", "b", "c"], len(pairs))
    return frame([(u, i, int(t), str(d)) for (u, i), t, d in zip(pairs, ts, dom, strict=True)])


# ---- temporal ---------------------------------------------------------------------------------
def test_temporal_cuts_by_time_and_sends_ties_to_the_later_part() -> None:
    df = frame([("u1", f"i{k}", t, "a") for k, t in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 8, 8])])
    split = temporal_split(df, val_frac=0.2, test_frac=0.2)
    p = parts(split)
    assert {i for _, i in p["test"]} == {"i7", "i8", "i9"}  # cut-off ts 8, all three ties
    assert {i for _, i in p["val"]} == {"i6"}
    assert len(p["train"]) == 6 and split.sizes() == {"train": 6, "val": 1, "test": 3}


def test_temporal_accepts_datetimes_and_rejects_bad_fractions() -> None:
    df = frame([("u1", "i1", 0, "a"), ("u1", "i2", 0, "a"), ("u2", "i1", 0, "a")])
    df["ts"] = pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-02"])
    split = temporal_split(df, val_frac=0.0, test_frac=0.34)
    assert parts(split)["test"] == {("u1", "i2")}
    with pytest.raises(InputError, match="val_frac"):
        temporal_split(df, 0.5, 0.5)


# ---- leave last out ---------------------------------------------------------------------------
def test_leave_last_out_per_user_with_item_tie_break() -> None:
    df = frame(
        [
            ("u1", "i1", 1, "a"),
            ("u1", "i2", 2, "a"),
            ("u1", "i4", 3, "a"),
            ("u1", "i3", 3, "a"),  # tie at ts 3: larger item id i4 is last
            ("u2", "i1", 5, "a"),
            ("u2", "i2", 6, "a"),  # only two: both train
        ]
    )
    p = parts(leave_last_out(df))
    assert p["test"] == {("u1", "i4")}
    assert p["val"] == {("u1", "i3")}
    assert p["train"] == {("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u2", "i2")}


def test_leave_last_out_does_not_depend_on_row_order() -> None:
    df = random_frame(np.random.default_rng(3))
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert parts(leave_last_out(df)) == parts(leave_last_out(shuffled))


# ---- cold start -------------------------------------------------------------------------------
def test_cold_start_holds_out_the_domain_users_there() -> None:
    df = frame(
        [
            ("u1", "i1", 1, "shop"),
            ("u1", "t1", 2, "travel"),
            ("u2", "t1", 3, "travel"),
            ("u2", "t2", 4, "travel"),
            ("u3", "i1", 5, "shop"),
            ("u4", "t2", 6, "travel"),  # not listed as active in travel: stays train
        ]
    )
    active = pd.DataFrame({"user": ["u1", "u2", "u3"], "domain": ["travel", "travel", "travel"]})
    split = cold_start_split(df, "travel", active, val_frac=0.5, seed=0)
    p = parts(split)
    held = p["val"] | p["test"]
    assert held == {("u1", "t1"), ("u2", "t1"), ("u2", "t2")}
    assert {u for u, _ in p["val"]}.isdisjoint({u for u, _ in p["test"]})
    assert len({u for u, _ in p["val"]}) == 1  # half of the two held-out users
    assert p["train"] == {("u1", "i1"), ("u3", "i1"), ("u4", "t2")}
    assert parts(cold_start_split(df, "travel", active, 0.5, seed=0)) == p  # seeded


def test_cold_start_without_user_domains_takes_every_user_of_the_domain() -> None:
    df = frame([("u1", "i1", 1, "shop"), ("u1", "t1", 2, "travel"), ("u2", "t1", 3, "travel")])
    p = parts(cold_start_split(df, "travel", val_frac=0.0))
    assert p["test"] == {("u1", "t1"), ("u2", "t1")} and p["train"] == {("u1", "i1")} and not p["val"]
    with pytest.raises(InputError, match="no interactions in domain 'health'"):
        cold_start_split(df, "health")


def test_cold_items_holds_out_every_interaction_of_a_seeded_share_of_items() -> None:
    rows = [(f"u{u}", f"i{i}", u * 10 + i, "movies") for u in range(6) for i in range(10) if (u + i) % 3]
    df = frame(rows)
    split = cold_items_split(df, share=0.3, val_frac=0.25, seed=4)
    p = parts(split)
    held = p["val"] | p["test"]
    cold = {i for _, i in held}
    assert len(cold) == 3  # 30% of 10 items
    assert held == {(u, i) for u, i, _, _ in rows if i in cold}  # every interaction of a cold item
    assert not cold & {i for _, i in p["train"]}
    val_users, test_users = {u for u, _ in p["val"]}, {u for u, _ in p["test"]}
    assert not val_users & test_users and len(val_users) == int(len(val_users | test_users) * 0.25)
    assert parts(cold_items_split(df, 0.3, 0.25, seed=4)) == p
    for bad in (0.0, 1.0):
        with pytest.raises(InputError, match="cold item share"):
            cold_items_split(df, share=bad)


def test_the_cold_items_checker_catches_a_warm_held_out_item() -> None:
    df = frame([("u1", "i1", 1, "a"), ("u2", "i1", 2, "a"), ("u1", "i2", 3, "a"), ("u2", "i2", 4, "a")])
    good = cold_items_split(df, share=0.5, val_frac=0.0, seed=0)
    good.check_leakage()
    warm = Split("cold_items", np.append(good.train, good.test[:1]), good.val, good.test[1:], "", good.frame)
    with pytest.raises(LeakageError, match="held-out item has a train row"):
        warm.check_leakage()


# ---- input checks and the leakage checker -----------------------------------------------------
def test_bad_frames_are_refused() -> None:
    with pytest.raises(InputError, match="duplicate"):
        leave_last_out(frame([("u1", "i1", 1, "a"), ("u1", "i1", 2, "a")]))
    with pytest.raises(InputError, match="missing: domain"):
        leave_last_out(pd.DataFrame({"user": ["u1"], "item": ["i1"], "ts": [1]}))


def test_check_leakage_catches_a_tampered_split() -> None:
    df = frame([("u1", f"i{k}", k, "a") for k in range(5)])
    good = temporal_split(df, 0.2, 0.2)
    swapped = Split("temporal", good.test, good.val, good.train, "tampered", good.frame)
    with pytest.raises(LeakageError, match="temporal split leaks"):
        swapped.check_leakage()
    overlap = Split("temporal", good.train, good.val, np.concatenate([good.test, good.train[:1]]), "", df)
    with pytest.raises(LeakageError, match="exactly one"):
        overlap.check_leakage()
    llo = leave_last_out(df)
    wrong = Split("leave_last_out", llo.train[1:], llo.val, np.append(llo.test, llo.train[0]), "", llo.frame)
    with pytest.raises(LeakageError):
        wrong.check_leakage()


def test_leave_last_out_checker_names_a_held_out_row_that_is_not_the_users_last() -> None:
    df = frame([("u1", f"i{k}", k, "a") for k in range(5)] + [("u2", f"i{k}", k, "a") for k in range(4)])
    good = leave_last_out(df)
    u1_train = good.train[good.frame["user"].iloc[good.train].to_numpy() == "u1"]
    u1_test = good.test[good.frame["user"].iloc[good.test].to_numpy() == "u1"]
    test = np.sort(np.concatenate([good.test[good.test != u1_test[0]], u1_train[:1]]))
    train = np.sort(np.concatenate([good.train[good.train != u1_train[0]], u1_test]))
    with pytest.raises(LeakageError, match="user u1 has a held-out row that is not their last"):
        Split("leave_last_out", train, good.val, test, "", good.frame).check_leakage()


@pytest.mark.parametrize("seed", range(10))
def test_integer_ids_split_like_their_sorted_string_ids(seed: int) -> None:
    # the loader passes id-map rows (ints whose order is the ids' order) instead of id strings
    df = random_frame(np.random.default_rng(seed))
    if df.empty:
        return
    as_rows = df.assign(
        user=pd.factorize(df["user"], sort=True)[0].astype(np.int64),
        item=pd.factorize(df["item"], sort=True)[0].astype(np.int64),
    )
    for split in (leave_last_out, lambda f: cold_start_split(f, "a", seed=seed)):
        if split is not leave_last_out and not (df["domain"] == "a").any():
            continue
        a, b = split(df), split(as_rows)
        for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
            assert np.array_equal(x, y)


# ---- the rules on random frames (each split's output checked here, independently) -------------
@pytest.mark.parametrize("seed", range(40))
def test_rules_hold_on_random_frames(seed: int) -> None:
    rng = np.random.default_rng(seed)
    df = random_frame(rng)
    if df.empty:
        return
    n = len(df)

    t = temporal_split(df, val_frac=float(rng.uniform(0, 0.4)), test_frac=float(rng.uniform(0, 0.4)))
    assert_partition(t, n)
    ts = df["ts"].to_numpy()
    if len(t.test) and len(t.train):
        assert ts[t.test].min() > ts[t.train].max()
    if len(t.val) and len(t.train):
        assert ts[t.val].min() > ts[t.train].max()

    llo = leave_last_out(df)
    assert_partition(llo, n)
    for user, rows in df.groupby("user"):
        ranked = sorted(zip(rows["ts"], rows["item"], strict=True))
        p = parts(llo)
        if len(rows) >= 3:
            assert {(user, ranked[-1][1])} == {x for x in p["test"] if x[0] == user}
            assert {(user, ranked[-2][1])} == {x for x in p["val"] if x[0] == user}
        else:
            assert all((user, i) in p["train"] for _, i in ranked)

    domain = str(rng.choice(df["domain"].unique()))
    cs = cold_start_split(df, domain, val_frac=float(rng.uniform(0, 0.9)), seed=seed)
    assert_partition(cs, n)
    held = np.concatenate([cs.val, cs.test])
    assert (df["domain"].to_numpy()[held] == domain).all()
    held_users = set(df["user"].to_numpy()[held])
    train = df.iloc[cs.train]
    assert not ((train["domain"] == domain) & train["user"].isin(held_users)).any()
    assert held_users == set(df.loc[df["domain"] == domain, "user"])

    share = float(rng.uniform(0.05, 0.9))
    ci = cold_items_split(df, share=share, val_frac=float(rng.uniform(0, 0.9)), seed=seed)
    assert_partition(ci, n)
    items = df["item"].to_numpy()
    cold = set(items[np.concatenate([ci.val, ci.test])])
    assert len(cold) == max(1, int(df["item"].nunique() * share))
    assert not cold & set(items[ci.train])
    assert set(items[ci.train]) | cold == set(items)
    users = df["user"].to_numpy()
    assert not set(users[ci.val]) & set(users[ci.test])
