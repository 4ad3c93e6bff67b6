"""Amazon-reviews-style JSON lines (the 2014/2018 and 2023 releases) → a product graph.

McAuley lab, *Amazon Review Data* (Ni, Li & McAuley, EMNLP 2019) and *Amazon Reviews'23*
(Hou et al., 2024). Two files, one JSON object per line:

- reviews (required): ``reviewerID``|``user_id``, ``parent_asin``|``asin``, ``overall``|``rating``,
  ``unixReviewTime`` (seconds)|``timestamp`` (milliseconds; told apart by size); ``summary`` and
  the review text are read past (the schema has no place for them);
- metadata (optional): ``parent_asin``|``asin``, ``title``, ``description`` (text or list of
  texts), ``brand``|``store``, ``categories``|``category`` (one path as a list of names, or
  several as a list of lists), ``price`` (a number, ``"$12.99"``, a range ``"$5 - $9"`` whose
  low end is kept, or missing).

Out: User, Item (``kind="product"``), Brand and Category nodes; INTERACTED (``kind="review"``,
``confidence = rating / max_rating``; repeated (user, item) reviews collapse as in MovieLens),
MADE_BY, BELONGS_TO (item → leaf of each path) and SUBCATEGORY_OF edges. Each category path
prefix is one node (``level`` 0 = root) whose id hashes the whole path, so equal names under
different parents stay apart and ids are the same on every run. Reviewed items missing from the
metadata still become (bare) Item nodes. The same id twice in the metadata is dropped when the
lines agree and refused when they differ.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from loaders.readers.dataset import Dataset
from loaders.readers.parsing import (
    Where,
    check_plain,
    collapse_repeats,
    is_blank,
    json_kind,
    parse_key,
    parse_numbers,
    parse_timestamps,
    pick_columns,
    read_json_lines,
)

REVIEW_FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("user_id", "reviewerID"),
    "item": ("parent_asin", "asin"),
    "rating": ("rating", "overall"),
    "ts": ("timestamp", "unixReviewTime"),
}
META_FIELDS: dict[str, tuple[str, ...]] = {
    "item": ("parent_asin", "asin"),
    "title": ("title",),
    "description": ("description",),
    "brand": ("brand", "store"),
    "categories": ("categories", "category"),
    "price": ("price",),
}
PRICE = r"^\$?\s*(\d[\d,]*(?:\.\d+)?)(?:\s*-\s*\$?\s*\d[\d,]*(?:\.\d+)?)?$"
Path_ = tuple[str, ...]


@dataclass(frozen=True)
class AmazonReader:
    """Reviews (+ optional metadata) → Users, Items, Brands, a Category tree and their edges."""

    name: ClassVar[str] = "amazon"
    metadata: Path | None = None
    user_prefix: str = "az_u_"
    item_prefix: str = "az_i_"
    brand_prefix: str = "az_b_"
    category_prefix: str = "az_c_"
    max_rating: float = 5.0
    domain: str = "ecommerce"

    def read(self, path: Path, *, domain: str | None = None) -> Dataset:
        source = f"amazon:{path.name}" + (f"+{self.metadata.name}" if self.metadata else "")
        reviews = self._reviews(path, domain or self.domain, source)
        nodes: dict[str, pd.DataFrame] = {"User": _named(reviews["user"], self.user_prefix, source)}
        items = pd.DataFrame({"raw": reviews["item"].unique()})
        edges = {("User", "INTERACTED", "Item"): collapse_repeats(reviews.drop(columns=["user", "item"]))}
        if self.metadata is not None:
            meta = read_metadata(self.metadata, self.item_prefix, self.brand_prefix)
            items = pd.concat([meta, items]).drop_duplicates("raw").reset_index(drop=True)
            self._brands(meta, source, nodes, edges)
            self._categories(meta, source, nodes, edges)
        nodes["Item"] = self._items(items, source)
        return Dataset(source=source, nodes=nodes, edges=edges)

    def _reviews(self, path: Path, domain: str, source: str) -> pd.DataFrame:
        where = Where(path, json_lines=True)
        frame = read_json_lines(path, [f for names in REVIEW_FIELDS.values() for f in names])
        cols = pick_columns(frame, where, REVIEW_FIELDS, required=tuple(REVIEW_FIELDS))
        user = parse_key(frame[cols["user"]], where, cols["user"], self.user_prefix)
        item = parse_key(frame[cols["item"]], where, cols["item"], self.item_prefix)
        rating = parse_numbers(frame[cols["rating"]], where, cols["rating"], 0.0, self.max_rating)
        ts = parse_timestamps(frame[cols["ts"]], where, cols["ts"])
        return pd.DataFrame(
            {
                "user": user,
                "item": item,
                "head": self.user_prefix + user,
                "tail": self.item_prefix + item,
                "kind": "review",
                "ts": ts,
                "domain": domain,
                "count": 1,
                "confidence": rating / self.max_rating,
                "source": source,
            }
        )

    def _items(self, items: pd.DataFrame, source: str) -> pd.DataFrame:
        out = pd.DataFrame({"id": self.item_prefix + items["raw"], "kind": "product", "source": source})
        for col in ("title", "description", "price"):
            out[col] = items.get(col)
        out["name"] = out["title"].where(out["title"].notna(), items["raw"])
        out["price"] = out["price"].astype("float64")
        return out

    def _brands(self, meta: pd.DataFrame, source: str, nodes: dict[str, Any], edges: dict[Any, Any]) -> None:
        made = meta[meta["brand"].notna()]
        if not len(made):
            return
        nodes["Brand"] = _named(made["brand"], self.brand_prefix, source)
        edges[("Item", "MADE_BY", "Brand")] = pd.DataFrame(
            {
                "head": self.item_prefix + made["raw"],
                "tail": self.brand_prefix + made["brand"],
                "source": source,
            }
        )

    def _categories(
        self, meta: pd.DataFrame, source: str, nodes: dict[str, Any], edges: dict[Any, Any]
    ) -> None:
        links = meta[["raw", "categories"]].explode("categories").dropna()
        if not len(links):
            return
        paths = sorted({p[:i] for p in links["categories"] for i in range(1, len(p) + 1)})
        ids = {p: self.category_prefix + _path_hash(p) for p in paths}
        nodes["Category"] = pd.DataFrame(
            {
                "id": [ids[p] for p in paths],
                "name": [p[-1] for p in paths],
                "level": [len(p) - 1 for p in paths],
            }
        ).assign(source=source)
        belongs = pd.DataFrame(
            {"head": self.item_prefix + links["raw"], "tail": links["categories"].map(ids)}
        ).drop_duplicates()
        edges[("Item", "BELONGS_TO", "Category")] = belongs.assign(source=source).reset_index(drop=True)
        narrower = [p for p in paths if len(p) > 1]
        if narrower:
            edges[("Category", "SUBCATEGORY_OF", "Category")] = pd.DataFrame(
                {
                    "head": [ids[p] for p in narrower],
                    "tail": [ids[p[:-1]] for p in narrower],
                    "source": source,
                }
            )


def read_metadata(path: Path, item_prefix: str = "az_i_", brand_prefix: str = "az_b_") -> pd.DataFrame:
    """One row per item: raw id, title, description, brand, category paths, price."""
    where = Where(path, json_lines=True)
    frame = read_json_lines(path, [f for names in META_FIELDS.values() for f in names])
    cols = pick_columns(frame, where, META_FIELDS, required=("item",))

    def column(name: str) -> pd.Series:
        return frame[cols[name]] if name in cols else pd.Series(None, index=frame.index, dtype=object)

    def text(name: str, values: pd.Series | None = None) -> pd.Series:
        values = column(name) if values is None else values
        check_plain(values, where, cols.get(name, name), "text")
        return _text(values)

    brand = text("brand")
    parse_key(brand.dropna(), where, cols.get("brand", "brand"), brand_prefix)
    meta = pd.DataFrame(
        {
            "raw": parse_key(frame[cols["item"]], where, cols["item"], item_prefix),
            "title": text("title"),
            "description": text("description", column("description").map(_join)),
            "brand": brand,
            "categories": _paths(column("categories"), where, cols.get("categories", "categories")),
            "price": _price(column("price"), where, cols.get("price", "price")),
        }
    )
    return _one_per_item(meta, where, cols)


def _one_per_item(meta: pd.DataFrame, where: Where, cols: dict[str, str]) -> pd.DataFrame:
    comparable = meta.assign(categories=meta["categories"].map(repr))
    distinct = meta[~comparable.duplicated()]
    twice = distinct["raw"].duplicated()
    if twice.any():
        line = int(distinct.index[int(twice.to_numpy().argmax())])
        first = distinct[distinct["raw"] == distinct.at[line, "raw"]].iloc[0]
        again = comparable.loc[line]
        field = next(c for c in meta.columns if repr(first[c]) != repr(meta.at[line, c]) and c != "raw")
        raise where.error(
            line,
            cols.get(field, field),
            f"duplicate item {again['raw']!r} (also line {first.name}) with a different {field}: "
            f"{meta.at[line, field]!r} here, {first[field]!r} there; keep one line per item",
        )
    return distinct.reset_index(drop=True)


def _text(values: pd.Series) -> pd.Series:
    """Stripped strings; None where missing or empty."""
    out = values.where(~is_blank(values)).map(lambda v: None if v is None or v != v else str(v).strip())
    return out.astype(object)


def _join(value: Any) -> Any:
    """A list of texts as one text (a list holding anything but text or numbers stays a list)."""
    if isinstance(value, list) and all(json_kind(v) is None for v in value):
        return "\n".join(str(v).strip() for v in value if str(v).strip())
    return value


def _paths(values: pd.Series, where: Where, column: str) -> pd.Series:
    """Each value as a list of category paths (tuples of names)."""
    out: list[list[Path_]] = []
    for line, value in values.items():
        try:
            out.append(_as_paths(value))
        except TypeError:
            raise where.error(
                int(str(line)), column, f"{value!r} is neither a list of names nor a list of lists of names"
            ) from None
    return pd.Series(out, index=values.index, dtype=object)


def _as_paths(value: Any) -> list[Path_]:
    if value is None or (isinstance(value, float) and value != value) or value == []:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise TypeError(value)
    if all(isinstance(v, str) for v in value):
        return [p] if (p := _clean(value)) else []
    if all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in value):
        return [p for v in value if (p := _clean(v))]
    raise TypeError(value)


def _clean(names: list[str]) -> Path_:
    return tuple(n.strip() for n in names if n.strip())


def _price(values: pd.Series, where: Where, column: str) -> pd.Series:
    """Floats from numbers or ``$12.99``-style text; NaN where missing."""
    blank = is_blank(values)
    text = values.where(~blank).astype(str).str.strip()
    low = text.str.extract(PRICE, expand=False).str.replace(",", "", regex=False)
    where.check(~blank & low.isna(), values, column, "{value!r} is not a price (e.g. 12.99 or '$12.99')")
    return pd.to_numeric(low, errors="coerce").astype("float64")


def _named(raw: pd.Series, prefix: str, source: str) -> pd.DataFrame:
    names = pd.Series(raw.unique())
    return pd.DataFrame({"id": prefix + names, "name": names, "source": source})


def _path_hash(path: Path_) -> str:
    return hashlib.sha1("\x1f".join(path).encode()).hexdigest()[:16]
