"""Leakage-free train/val/test splits of user-item interactions.

Every function takes an interactions frame with columns ``user``, ``item``, ``ts`` (datetime or
number) and ``domain``, one row per (user, item), and returns a :class:`Split` of row positions.
Train, val and test partition the rows, and :meth:`Split.check_leakage` re-checks on the output
the rule each split promises:

- :func:`temporal_split`: two global time cut-offs; every val row is later than every train
  row and every test row later than every val row (rows tied at a cut-off go to the later part).
- :func:`leave_last_out`: per user, the last interaction (by ``ts``, ties broken by item id:
  integer ids numerically, others as strings) is test, the one before it val, the rest train;
  users with fewer than 3 keep all in train.
- :func:`cold_start_split`: the users active in a held-out domain lose all their interactions
  there to val/test (split by user, seeded), so the model meets them cold in that domain.
- :func:`cold_items_split`: a seeded share of the items loses every interaction to val/test (split
  by user), so every held-out item is unseen in training: item cold-start, for data with one
  domain (e.g. MovieLens), where only side information (text, a KG) can place those items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from graph.errors import InputError, MokgError

COLUMNS = ("user", "item", "ts", "domain")


class LeakageError(MokgError):
    """A split broke its own rule (a bug, not bad input): the message says which rows."""


@dataclass(frozen=True)
class Split:
    """Row positions (int64, sorted) of train/val/test in ``frame``, and what rule made them."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    description: str
    frame: pd.DataFrame = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)

    def masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boolean masks over the rows of ``frame`` (train, val, test)."""
        out = []
        for part in (self.train, self.val, self.test):
            mask = np.zeros(len(self.frame), dtype=bool)
            mask[part] = True
            out.append(mask)
        return out[0], out[1], out[2]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def info(self) -> dict[str, Any]:
        """Name, rule, parameters and sizes (what ``data.split_info`` records)."""
        return {"name": self.name, "description": self.description, "params": self.params, **self.sizes()}

    def check_leakage(self) -> None:
        """Raise :class:`LeakageError` unless the parts partition the rows and obey the split's rule."""
        _check_partition(self)
        _CHECKS[self.name](self)


def interactions_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The four split columns, checked: no missing user/item/ts, one row per (user, item)."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"interactions need columns {', '.join(COLUMNS)}; missing: {', '.join(missing)}")
    out = df.loc[:, list(COLUMNS)].reset_index(drop=True)
    for col in ("user", "item", "ts"):
        if out[col].isna().any():
            raise InputError(f"{int(out[col].isna().sum())} interactions have no {col}; drop or fill them")
    dupes = out.duplicated(["user", "item"])
    if dupes.any():
        first = out[dupes].iloc[0]
        raise InputError(
            f"{int(dupes.sum())} duplicate (user, item) rows, e.g. ({first['user']}, {first['item']}); "
            "aggregate repeated interactions into one row first"
        )
    return out


def temporal_split(df: pd.DataFrame, val_frac: float = 0.1, test_frac: float = 0.1) -> Split:
    """Global cut-offs at the ``1 - val_frac - test_frac`` and ``1 - test_frac`` quantiles of ts."""
    if not (val_frac >= 0 and test_frac >= 0 and val_frac + test_frac < 1):
        raise InputError(
            f"need 0 <= val_frac, test_frac and val_frac + test_frac < 1; got {val_frac}, {test_frac}"
        )
    frame = interactions_frame(df)
    ts = _ts(frame)
    ordered = np.sort(ts)
    t_val, t_test = _cutoff(ordered, val_frac + test_frac), _cutoff(ordered, test_frac)
    is_test = ts >= t_test if t_test is not None else np.zeros(len(ts), dtype=bool)
    is_val = (ts >= t_val) & ~is_test if t_val is not None else np.zeros(len(ts), dtype=bool)
    desc = (
        f"temporal: global cut-offs at the {1 - val_frac - test_frac:.2f} / {1 - test_frac:.2f} ts quantiles"
    )
    params = {"val_frac": val_frac, "test_frac": test_frac}
    return _make("temporal", frame, is_val, is_test, desc, params)


def leave_last_out(df: pd.DataFrame) -> Split:
    """Per user: last interaction → test, second last → val, rest train (users with < 3: all train)."""
    frame = interactions_frame(df)
    order = np.lexsort((_codes(frame["item"]), _ts(frame), _codes(frame["user"])))
    users = frame["user"].to_numpy()[order]
    from_end = pd.Series(users).groupby(users, sort=False).cumcount(ascending=False).to_numpy()
    size = pd.Series(users).groupby(users, sort=False).transform("size").to_numpy()
    is_test, is_val = np.zeros(len(frame), dtype=bool), np.zeros(len(frame), dtype=bool)
    is_test[order] = (from_end == 0) & (size >= 3)
    is_val[order] = (from_end == 1) & (size >= 3)
    desc = "leave-last-out: per user last by (ts, item) → test, second last → val; users with < 3 all train"
    return _make("leave_last_out", frame, is_val, is_test, desc, {})


def cold_start_split(
    df: pd.DataFrame,
    domain: str,
    user_domains: pd.DataFrame | None = None,
    val_frac: float = 0.5,
    seed: int = 0,
) -> Split:
    """Hold out ``domain``: its users' interactions there → val/test (users split by ``seed``).

    The held-out users are those with interactions in ``domain`` and, when ``user_domains`` (columns
    ``user``, ``domain``, e.g. the ACTIVE_IN edges) is given, listed as active there. Everything else,
    including their interactions in other domains, is train. ``val_frac`` of the held-out users
    (rounded down) go to val, the rest to test.
    """
    if not 0 <= val_frac < 1:
        raise InputError(f"val_frac must lie in [0, 1); got {val_frac}")
    frame = interactions_frame(df)
    in_domain = (frame["domain"] == domain).to_numpy()
    if not in_domain.any():
        raise InputError(f"no interactions in domain {domain!r}; domains present: {_domains(frame)}")
    user = _as_keys(frame["user"])  # (pandas isin hashes; np.isin on strings can be quadratic)
    users = pd.Series(np.sort(user[in_domain].unique()))
    if user_domains is not None:
        users = users[users.isin(_as_keys(user_domains.loc[user_domains["domain"] == domain, "user"]))]
    rng = np.random.default_rng(seed)
    val_users = rng.permutation(users.to_numpy())[: int(len(users) * val_frac)]
    held = in_domain & user.isin(users).to_numpy()
    is_val = held & user.isin(val_users).to_numpy()
    desc = (
        f"cold-start: {len(users)} users of domain {domain!r} hold out their interactions there "
        f"({len(val_users)} users → val, the rest → test); all else train"
    )
    params = {"domain": domain, "val_frac": val_frac, "seed": seed, "users": len(users)}
    return _make("cold_start", frame, is_val, held & ~is_val, desc, params)


def cold_items_split(df: pd.DataFrame, share: float = 0.2, val_frac: float = 0.1, seed: int = 0) -> Split:
    """Hold out a seeded ``share`` of the interacted items: every interaction with one → val/test.

    The users with held-out interactions are split by user (``seed``): ``val_frac`` of them
    (rounded down) → val, the rest → test. No train row touches a held-out item, so each test
    user's test items are all unseen in training; everything else is train.
    """
    if not 0 < share < 1:
        raise InputError(f"the cold item share must lie in (0, 1); got {share}")
    if not 0 <= val_frac < 1:
        raise InputError(f"val_frac must lie in [0, 1); got {val_frac}")
    frame = interactions_frame(df)
    item, user = _as_keys(frame["item"]), _as_keys(frame["user"])
    rng = np.random.default_rng(seed)
    items = np.sort(item.unique())
    cold = rng.permutation(items)[: max(1, int(len(items) * share))]
    held = item.isin(cold).to_numpy()
    users = np.sort(user[held].unique())
    val_users = rng.permutation(users)[: int(len(users) * val_frac)]
    is_val = held & user.isin(val_users).to_numpy()
    desc = (
        f"cold items: {len(cold)} of {len(items)} items (share {share}) hold out every interaction; "
        f"{len(val_users)} of their {len(users)} users → val, the rest → test; all else train"
    )
    params = {"share": share, "val_frac": val_frac, "seed": seed, "items": len(cold), "users": len(users)}
    return _make("cold_items", frame, is_val, held & ~is_val, desc, params)


# ---- helpers -------------------------------------------------------------------------------------
def _ts(frame: pd.DataFrame) -> np.ndarray:
    """Timestamps as sortable numbers (int64 ns for datetimes)."""
    ts = frame["ts"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        return ts.astype("datetime64[ns]").to_numpy().astype(np.int64)
    if not pd.api.types.is_numeric_dtype(ts):
        raise InputError(f"ts must be datetimes or numbers, got dtype {ts.dtype}")
    return ts.to_numpy()


def _codes(column: pd.Series) -> np.ndarray:
    """Integer codes in the sort order of the values (for ``np.lexsort`` and tie-breaks): integer
    ids as they are, anything else in its order as strings."""
    if pd.api.types.is_integer_dtype(column):
        return column.to_numpy()
    codes, _ = pd.factorize(column.astype(str), sort=True)
    return codes


def _as_keys(column: pd.Series) -> pd.Series:
    """User ids to compare: integer ids (e.g. rows of an id map) as they are, others as strings."""
    return column if pd.api.types.is_integer_dtype(column) else column.astype(str)


def _cutoff(ordered: np.ndarray, frac_after: float) -> Any:
    """The ts at which the last ``frac_after`` of the rows start (None: no rows after)."""
    n = len(ordered)
    k = n - round(n * frac_after)
    return None if frac_after <= 0 or k >= n else ordered[max(k, 0)]


def _domains(frame: pd.DataFrame) -> str:
    return ", ".join(sorted(map(str, frame["domain"].dropna().unique()))[:10]) or "none"


def _make(
    name: str, frame: pd.DataFrame, is_val: np.ndarray, is_test: np.ndarray, desc: str, params: dict[str, Any]
) -> Split:
    is_train = ~(is_val | is_test)
    parts = [np.flatnonzero(m).astype(np.int64) for m in (is_train, is_val, is_test)]
    split = Split(name, parts[0], parts[1], parts[2], desc, frame, params)
    split.check_leakage()
    return split


def _fail(split: Split, what: str) -> None:
    raise LeakageError(f"{split.name} split leaks: {what}")


def _check_partition(split: Split) -> None:
    counts = np.zeros(len(split.frame), dtype=np.int64)
    for part in (split.train, split.val, split.test):
        np.add.at(counts, part, 1)
    if (counts != 1).any():
        _fail(split, f"{int((counts != 1).sum())} rows are not in exactly one of train/val/test")


def _check_temporal(split: Split) -> None:
    ts = _ts(split.frame)
    parts = [ts[p] for p in (split.train, split.val, split.test)]
    for i, j in ((0, 1), (0, 2), (1, 2)):
        if len(parts[i]) and len(parts[j]) and parts[i].max() >= parts[j].min():
            _fail(
                split,
                f"a {('train', 'val', 'test')[j]} row is not later than every {('train', 'val')[i]} row",
            )


def _check_leave_last_out(split: Split) -> None:
    frame = split.frame
    user, _ = pd.factorize(_as_keys(frame["user"]))
    t, i = _ts(frame), _codes(frame["item"])
    for part, name in ((split.test, "test"), (split.val, "val")):
        if pd.Series(user[part]).duplicated().any():
            _fail(split, f"a user has more than one {name} row")
    rest = np.concatenate([split.train, split.val])
    for rows, last in ((rest, split.test), (split.train, split.val)):
        # each user's held-out (ts, item) key, then: no earlier part's row of theirs at or after it
        has = np.zeros(user.max() + 1 if len(user) else 0, dtype=bool)
        last_t, last_i = np.zeros(len(has), dtype=t.dtype), np.zeros(len(has), dtype=i.dtype)
        has[user[last]], last_t[user[last]], last_i[user[last]] = True, t[last], i[last]
        rows = rows[has[user[rows]]]
        u = user[rows]
        later = (t[rows] > last_t[u]) | ((t[rows] == last_t[u]) & (i[rows] >= last_i[u]))
        if later.any():
            bad = frame["user"].iloc[rows[np.flatnonzero(later)[0]]]
            _fail(split, f"user {bad} has a held-out row that is not their last")
    sizes = np.bincount(user)
    need = set(np.flatnonzero(sizes >= 3).tolist())
    if set(user[split.val].tolist()) != need or set(user[split.test].tolist()) != need:
        _fail(split, "val and test users are not exactly the users with >= 3 interactions")


def _check_cold_start(split: Split) -> None:
    frame, domain = split.frame, split.params["domain"]
    held = np.concatenate([split.val, split.test])
    if (frame["domain"].iloc[held] != domain).any():
        _fail(split, f"a val/test row is outside the held-out domain {domain!r}")
    val_users, test_users = set(frame["user"].iloc[split.val]), set(frame["user"].iloc[split.test])
    if val_users & test_users:
        _fail(split, "a user has rows in both val and test")
    train = frame.iloc[split.train]
    cold = train[(train["domain"] == domain) & train["user"].isin(val_users | test_users)]
    if len(cold):
        _fail(split, f"user {cold['user'].iloc[0]} is held out in {domain!r} but has a train row there")


def _check_cold_items(split: Split) -> None:
    frame = split.frame
    held = np.concatenate([split.val, split.test])
    seen = set(_as_keys(frame["item"]).iloc[split.train])
    if seen & set(_as_keys(frame["item"]).iloc[held]):
        _fail(split, "a held-out item has a train row")
    val_users, test_users = set(frame["user"].iloc[split.val]), set(frame["user"].iloc[split.test])
    if val_users & test_users:
        _fail(split, "a user has rows in both val and test")


_CHECKS: dict[str, Callable[[Split], None]] = {
    "temporal": _check_temporal,
    "leave_last_out": _check_leave_last_out,
    "cold_start": _check_cold_start,
    "cold_items": _check_cold_items,
}
