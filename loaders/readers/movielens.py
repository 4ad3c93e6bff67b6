"""MovieLens-style ratings: ``user,item,rating,ts`` (CSV or TSV) → User, Item, INTERACTED.

Accepted layouts
- a header ``user,item,rating,ts`` (or MovieLens' ``userId,movieId,rating,timestamp``), comma or
  tab separated (the separator is guessed from the first line unless ``sep`` is given);
- headerless files such as ML-100K's ``u.data``: give ``names`` (see :meth:`MovieLensReader.u_data`);
  ML-1M's ``ratings.dat`` is ``sep="::"`` with the same names (slower: pandas' Python parser).

``ts`` is unix seconds (milliseconds when >= 1e11) or ISO-8601. Each rating becomes an
``INTERACTED`` edge with ``kind="rating"``, ``confidence = rating / max_rating``, ``count`` and
``domain``. Repeated (user, item) rows collapse to one edge: the latest row's rating and ``ts``,
``count`` = the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from loaders.readers.dataset import Dataset
from loaders.readers.parsing import (
    Where,
    collapse_repeats,
    parse_key,
    parse_numbers,
    parse_timestamps,
    pick_columns,
    read_csv,
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "user": ("user", "userId", "user_id"),
    "item": ("item", "movieId", "item_id", "itemId", "movie_id"),
    "rating": ("rating",),
    "ts": ("ts", "timestamp"),
}
U_DATA = ("user", "item", "rating", "ts")


@dataclass(frozen=True)
class MovieLensReader:
    """Ratings file → Users and Items (ids prefixed, e.g. ``ml_u_1``) and rating interactions."""

    name: ClassVar[str] = "movielens"
    sep: str | None = None  # None: tab if the first line has one, else comma
    names: tuple[str, ...] | None = None  # column names of a headerless file
    user_prefix: str = "ml_u_"
    item_prefix: str = "ml_i_"
    max_rating: float = 5.0
    domain: str = "movies"
    kind: str = "rating"

    @classmethod
    def u_data(cls) -> MovieLensReader:
        """The ML-100K ``u.data`` layout: tab separated, no header, user item rating timestamp."""
        return cls(sep="\t", names=U_DATA)

    def read(self, path: Path, *, domain: str | None = None) -> Dataset:
        where = Where(path, header_lines=0 if self.names else 1)
        frame = read_csv(path, where, sep=self.sep, names=self.names)
        cols = pick_columns(frame, where, COLUMNS, required=tuple(COLUMNS))
        users = parse_key(frame[cols["user"]], where, cols["user"], self.user_prefix)
        items = parse_key(frame[cols["item"]], where, cols["item"], self.item_prefix)
        rating = parse_numbers(frame[cols["rating"]], where, cols["rating"], 0.0, self.max_rating)
        ts = parse_timestamps(frame[cols["ts"]], where, cols["ts"])
        source = f"movielens:{path.name}"
        edges = pd.DataFrame(
            {
                "head": self.user_prefix + users,
                "tail": self.item_prefix + items,
                "kind": self.kind,
                "ts": ts,
                "domain": domain or self.domain,
                "count": 1,
                "confidence": rating / self.max_rating,
                "source": source,
            }
        )
        return Dataset(
            source=source,
            nodes={
                "User": _nodes(users, self.user_prefix, source),
                "Item": _nodes(items, self.item_prefix, source),
            },
            edges={("User", "INTERACTED", "Item"): collapse_repeats(edges)},
        )


def _nodes(raw_ids: pd.Series, prefix: str, source: str) -> pd.DataFrame:
    ids = pd.Series(raw_ids.unique())
    return pd.DataFrame({"id": prefix + ids, "name": ids, "source": source})
