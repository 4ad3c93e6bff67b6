"""Step 1 of `python -m bench.peers`: our split written as RecBole *benchmark files* (atomic
``.inter`` / ``.user`` / ``.item``, the wheel's ``.kg`` and ``.link``), tokens being the dataset's
own ids, so both sides map users and items the same way."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from graph.errors import InputError

if TYPE_CHECKING:
    from gnn.rec.data import RecData

NAME = "peers"  # the RecBole dataset name of the benchmark files
DOMAIN = "ml-100k"
INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"


def tokens(ids: Sequence[str], prefix: str) -> list[str]:
    """Store ids → the dataset's raw ids (``ml-100k:u:196`` → ``196``)."""
    bad = next((i for i in ids if not i.startswith(prefix)), None)
    if bad is not None:
        raise InputError(f"id {bad!r} does not start with {prefix!r}: load the data with `mokg load recbole`")
    return [i[len(prefix) :] for i in ids]


def benchmark_frames(
    data: RecData, dataset: str = DOMAIN, ratings: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """``train`` (every fit row), ``valid`` (each user's last fit row by time, then item) and ``test``
    (every test row) as frames of tokens; ``rating`` / ``timestamp`` from ``ratings`` (columns
    user_id, item_id, rating, timestamp) where it has the pair, else empty."""
    from loaders.readers.recbole import Ids

    ids = Ids(dataset, f"{dataset}:e")
    users = np.array(tokens(data.user_ids, ids.user), dtype=object)
    items = np.array(tokens(data.item_ids, ids.item), dtype=object)
    order = np.lexsort((data.fit_item, data.fit_ts, data.fit_user))
    ends = order[np.r_[data.fit_user[order][1:] != data.fit_user[order][:-1], True]] if len(order) else order
    last = np.sort(ends)
    parts = {
        "train": (data.fit_user, data.fit_item),
        "valid": (data.fit_user[last], data.fit_item[last]),
        "test": (data.test_user, data.test_item),
    }
    out = {}
    for part, (u, i) in parts.items():
        frame = pd.DataFrame({"user_id": users[u], "item_id": items[i]})
        if ratings is not None:
            frame = frame.merge(ratings, on=["user_id", "item_id"], how="left")
        out[part] = frame.reindex(columns=["user_id", "item_id", "rating", "timestamp"])
    return out


def write_benchmark(
    data: RecData,
    folder: Path,
    dataset: str = DOMAIN,
    ratings: pd.DataFrame | None = None,
    kg_dir: Path | None = None,
) -> Path:
    """Write ``folder/peers/peers.{train,valid,test}.inter``, ``.user``, ``.item`` and, from
    ``kg_dir`` (a RecBole dataset folder), its ``.kg`` and its ``.link`` rows of our items."""
    from loaders.readers.recbole import Ids

    ids = Ids(dataset, f"{dataset}:e")
    root = folder / NAME
    root.mkdir(parents=True, exist_ok=True)
    for part, frame in benchmark_frames(data, dataset, ratings).items():
        write_atomic(root / f"{NAME}.{part}.inter", INTER, frame)
    items = tokens(data.item_ids, ids.item)
    write_atomic(root / f"{NAME}.user", "user_id:token", pd.DataFrame({"u": tokens(data.user_ids, ids.user)}))
    write_atomic(root / f"{NAME}.item", "item_id:token", pd.DataFrame({"i": items}))
    if kg_dir is not None:
        shutil.copyfile(kg_dir / f"{dataset}.kg", root / f"{NAME}.kg")
        link = pd.read_csv(kg_dir / f"{dataset}.link", sep="\t", dtype=str, keep_default_na=False)
        write_atomic(root / f"{NAME}.link", "\t".join(link.columns), link[link.iloc[:, 0].isin(set(items))])
    return root


def write_atomic(path: Path, header: str, frame: pd.DataFrame) -> None:
    body = frame.to_csv(sep="\t", header=False, index=False, lineterminator="\n")
    path.write_text(header + "\n" + body, encoding="utf-8")


def read_inter(path: Path) -> pd.DataFrame:
    """An atomic ``.inter`` file, headers reduced to field names (tokens stay text)."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [str(c).partition(":")[0] for c in frame.columns]
    for col in ("rating", "timestamp"):
        if col in frame:
            frame[col] = pd.to_numeric(frame[col].replace("", np.nan))
    return frame
