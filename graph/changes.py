"""Before-images: what a run changed on rows it did not create, so deleting the run restores it.

Every write compares the incoming rows with the stored ones (:func:`split`). When a run updates a
row another run created, the store writes one ``Change`` row (a system label) in the same
transaction: the row's key, and for exactly the properties that changed, their values before the
run (``before``) and the values the run wrote (``after``), as JSON. A second change by the same
run merges into it (the first ``before`` wins, the latest ``after``). ``delete_run`` puts a
``before`` value back only where the stored value is still the run's ``after``; any other value
was written since, so it is kept and counted as a conflict (:func:`plan_restore`).

A removed edge (:meth:`graph.store.GraphStore.remove_edges`) leaves one ``Change`` row whose
``before`` is the whole stored row (every property, ``run_id`` and ``created_at`` included) and
whose ``after`` is the marker :data:`REMOVED` (``{"__removed__": true}``); ``delete_run`` creates
the edge again from it where no edge with that key exists now (:mod:`graph.removal`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from graph.schema import KEY, SCHEMA, Prop, PropType, Schema
from graph.subgraph import EdgeKey

Target = str | EdgeKey  # a node label or an edge key
REMOVED: dict[str, Any] = {"__removed__": True}  # the ``after`` of a removed row


def target_name(target: Target) -> str:
    return target if isinstance(target, str) else "-".join(target)


def parse_target(name: str) -> Target:
    parts = name.split("-")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else name


def key_columns(target: Target) -> list[str]:
    return [KEY] if isinstance(target, str) else ["head", "tail"]


def target_props(target: Target, schema: Schema = SCHEMA) -> dict[str, Prop]:
    props = schema.label(target).props if isinstance(target, str) else schema.rel(target[1]).props
    return {p.name: p for p in props}


def encode(value: Any) -> Any:
    """A stored value as JSON (timestamps as ISO text); None for null."""
    if value is None or (not isinstance(value, str | list | dict) and pd.isna(value)):
        return None
    if isinstance(value, datetime | pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value: Any, prop: Prop) -> Any:
    if value is None or prop.type is not PropType.TIMESTAMP:
        return value
    return pd.Timestamp(value).to_pydatetime()


def split(incoming: pd.DataFrame, existing: pd.DataFrame, keys: list[str]) -> tuple[Any, pd.DataFrame]:
    """A mask of the incoming rows that are new, and the incoming rows whose given values differ
    from the stored ones (a missing value never counts as a change)."""
    if not len(existing):
        return np.ones(len(incoming), dtype=bool), incoming.iloc[:0]
    stored = pd.MultiIndex.from_frame(existing[keys])
    is_new = ~pd.MultiIndex.from_frame(incoming[keys]).isin(stored)
    old = incoming[~is_new]
    return is_new, old[_changed(old, existing, keys).to_numpy()]


def _changed(incoming: pd.DataFrame, existing: pd.DataFrame, keys: list[str]) -> pd.Series:
    merged = incoming.merge(existing, on=keys, how="left", suffixes=("", "__old"))
    changed = pd.Series(False, index=merged.index)
    for col in incoming.columns:
        if col not in keys and f"{col}__old" in merged:
            changed |= _differs(merged[col], merged[f"{col}__old"])
    return changed


def _differs(new: pd.Series, old: pd.Series) -> pd.Series:
    return new.notna() & (old.isna() | (new.astype(object) != old.astype(object)))


def fill_only(changed: pd.DataFrame, existing: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, Any]:
    """For a load that keeps what is stored: the changed rows with only the values that fill a
    missing property (a stored value is never replaced), and a mask over ``changed`` of the rows
    with a stored value that differs (kept)."""
    merged = changed.merge(existing, on=keys, how="left", suffixes=("", "__old"))
    out = changed.reset_index(drop=True).copy()
    clash = np.zeros(len(out), dtype=bool)
    fills = np.zeros(len(out), dtype=bool)
    for col in changed.columns:
        if col in keys or f"{col}__old" not in merged:
            continue
        stored = merged[f"{col}__old"].notna().to_numpy()
        differs = _differs(merged[col], merged[f"{col}__old"]).to_numpy()
        clash |= differs & stored
        fills |= differs & ~stored
        out[col] = out[col].astype(object).where(~stored, None)
    return out[fills], clash


def change_id(run_id: str, target: Target, key: str) -> str:
    return f"{run_id}|{target_name(target)}|{key}"


def before_images(
    run_id: str, target: Target, changed: pd.DataFrame, existing: pd.DataFrame
) -> list[dict[str, Any]]:
    """One Change row per changed row that another run created: key, before and after (JSON)."""
    keys = key_columns(target)
    props = [c for c in changed.columns if c not in keys]
    old = existing[[*keys, "run_id", *props]].rename(columns={c: f"{c}__old" for c in ["run_id", *props]})
    merged = changed.merge(old, on=keys, how="left")
    foreign = (merged["run_id__old"] != run_id).to_numpy()
    merged = merged[foreign]
    masks = {p: _differs(merged[p], merged[f"{p}__old"]).to_numpy() for p in props}
    out: list[dict[str, Any]] = []
    for i, key in enumerate(_keys(merged, keys)):
        names = [p for p in props if masks[p][i]]
        before = {p: encode(merged[f"{p}__old"].iloc[i]) for p in names}
        after = {p: encode(merged[p].iloc[i]) for p in names}
        out.append(_change_row(run_id, target, key, before, after))
    return out


def _keys(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    if keys == [KEY]:
        return [json.dumps(str(v)) for v in frame[KEY]]
    return [json.dumps([str(h), str(t)]) for h, t in zip(frame["head"], frame["tail"], strict=True)]


def _change_row(
    run_id: str, target: Target, key: str, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    return {
        KEY: change_id(run_id, target, key),
        "target": target_name(target),
        "key": key,
        "before": json.dumps(before, sort_keys=True),
        "after": json.dumps(after, sort_keys=True),
        "source": run_id,
    }


def removal_images(
    run_id: str, target: EdgeKey, existing: pd.DataFrame, earlier: pd.DataFrame
) -> list[dict[str, Any]]:
    """One Change row per stored edge another run created: the whole row before, :data:`REMOVED`
    after; a before-image the run recorded earlier for the same edge wins (it is older)."""
    prior = {str(i): json.loads(b) for i, b in earlier[[KEY, "before"]].values} if len(earlier) else {}
    foreign = existing[existing["run_id"] != run_id]
    props = [c for c in foreign.columns if c not in ("head", "tail")]
    out = []
    for key, row in zip(_keys(foreign, ["head", "tail"]), foreign.to_dict("records"), strict=True):
        before = {p: encode(row[p]) for p in props}
        before.update(prior.get(change_id(run_id, target, key), {}))
        out.append(_change_row(run_id, target, key, before, REMOVED))
    return out


def is_removal(after_text: str) -> bool:
    return bool(json.loads(after_text) == REMOVED)


def merge_earlier(rows: list[dict[str, Any]], earlier: pd.DataFrame) -> list[dict[str, Any]]:
    """Fold in the run's earlier Change rows for the same rows: first ``before``, latest ``after``."""
    if not len(earlier):
        return rows
    prior = {str(i): (json.loads(b), json.loads(a)) for i, b, a in earlier[[KEY, "before", "after"]].values}
    out = []
    for row in rows:
        if row[KEY] in prior:
            b0, a0 = prior[row[KEY]]
            before = {**json.loads(row["before"]), **b0}
            after = {**a0, **json.loads(row["after"])}
            row = {
                **row,
                "before": json.dumps(before, sort_keys=True),
                "after": json.dumps(after, sort_keys=True),
            }
        out.append(row)
    return out


@dataclass
class Restore:
    """What deleting a run puts back in one table: frames of rows to assign, grouped by the
    properties they set; ``restored`` values and ``conflicts`` (changed since, or row gone)."""

    target: Target
    frames: list[pd.DataFrame] = field(default_factory=list)
    restored: int = 0
    conflicts: int = 0


def plan_restore(
    target: Target, changes: pd.DataFrame, current: pd.DataFrame, schema: Schema = SCHEMA
) -> Restore:
    """For each Change row of ``target``: the before-values whose stored value is still ``after``."""
    keys = key_columns(target)
    props = target_props(target, schema)
    now = {_row_key(keys, r): r for r in current.to_dict("records")} if len(current) else {}
    plan = Restore(target)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for key_text, before_text, after_text in changes[["key", "before", "after"]].values:
        key = json.loads(key_text)
        before, after = json.loads(before_text), json.loads(after_text)
        row = now.get(json.dumps(key))
        back = {p: v for p, v in before.items() if row is not None and encode(row.get(p)) == after.get(p)}
        plan.restored += len(back)
        plan.conflicts += len(before) - len(back)
        if back:
            ids = {KEY: key} if keys == [KEY] else {"head": key[0], "tail": key[1]}
            values = {p: decode(v, props[p]) for p, v in back.items()}
            groups.setdefault(tuple(sorted(back)), []).append({**ids, **values})
    plan.frames = [pd.DataFrame(rows) for rows in groups.values()]
    return plan


def _row_key(keys: Sequence[str], row: Mapping[Any, Any]) -> str:
    return (
        json.dumps(str(row[KEY])) if list(keys) == [KEY] else json.dumps([str(row["head"]), str(row["tail"])])
    )
