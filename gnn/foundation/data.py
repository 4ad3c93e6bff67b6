"""The samples every multi-domain ranker here trains and is scored on: :class:`FoundationData`.

One frame of labelled exposures, one row per (request, item) shown, and two side tables. A
*scenario* is a (domain, task) pair: ``task`` is ``"search"`` (a query asked for items) or
``"rec"`` (a user was shown items); in the S&R Multi-Domain Foundation paper (Gong et al., "An
Unified Search and Recommendation Foundation Model for Cold-Start Scenario", CIKM 2023,
arXiv 2309.08939) each scenario is a task of the multi-task module.

``samples`` columns
    ``domain`` (str), ``task`` (``search``/``rec``), ``request`` (str: the user id for ``rec``,
    the query id for ``search``), ``user`` (str, the user behind the request), ``item`` (str),
    ``label`` (int8, 1 = clicked), ``ts`` (datetime64), ``split`` (``train``/``valid``/``test``).
``requests`` columns
    ``request`` (str, unique), ``kind`` (``user``/``query``), ``text`` (str, may be empty: users
    have none), ``sparse`` (list of str tokens, field-prefixed, e.g. ``"gender:F"``, ``"active:finance"``).
``items`` columns
    ``item`` (str, unique), ``text`` (str), ``sparse`` (list of str tokens, field-prefixed:
    ``"cat1:…"``, ``"cat2:…"`` (every level of the category path), ``"brand:…"``, ``"domain:…"``,
    ``"kg:…"`` for KG neighbours, ``"genre:…"``).

Every request and item of ``samples`` has a row in its side table; :func:`validate` checks that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from graph.errors import InputError

TASKS = ("search", "rec")
SPLITS = ("train", "valid", "test")
SAMPLE_COLUMNS = ["domain", "task", "request", "user", "item", "label", "ts", "split"]
REQUEST_COLUMNS = ["request", "kind", "text", "sparse"]
ITEM_COLUMNS = ["item", "text", "sparse"]


@dataclass(frozen=True)
class FoundationData:
    """Labelled exposures of many scenarios plus their requests and items (see the module doc)."""

    name: str
    samples: pd.DataFrame
    requests: pd.DataFrame
    items: pd.DataFrame
    cold_domain: str | None = None  # the scenario(s) of this domain are the cold-start target
    notes: dict[str, str] = field(default_factory=dict)  # e.g. {"search": "no search scenario"}

    @property
    def domains(self) -> list[str]:
        return sorted(self.samples["domain"].unique().tolist())

    @property
    def scenarios(self) -> list[str]:
        """``"domain/task"`` names, sorted."""
        s = self.samples[["domain", "task"]].drop_duplicates()
        return sorted((s["domain"] + "/" + s["task"]).tolist())


def validate(data: FoundationData) -> FoundationData:
    """Raise :class:`InputError` naming the first problem; return ``data`` when it is sound."""
    for frame, cols, what in (
        (data.samples, SAMPLE_COLUMNS, "samples"),
        (data.requests, REQUEST_COLUMNS, "requests"),
        (data.items, ITEM_COLUMNS, "items"),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InputError(f"{data.name}: {what} lack column(s) {', '.join(missing)}")
    s = data.samples
    if s.empty:
        raise InputError(f"{data.name}: no samples")
    bad_task = set(s["task"].unique()) - set(TASKS)
    if bad_task:
        raise InputError(f"{data.name}: unknown task(s) {sorted(bad_task)}; tasks are {TASKS}")
    bad_split = set(s["split"].unique()) - set(SPLITS)
    if bad_split:
        raise InputError(f"{data.name}: unknown split(s) {sorted(bad_split)}; splits are {SPLITS}")
    if not set(s["label"].unique()) <= {0, 1}:
        raise InputError(f"{data.name}: labels must be 0 or 1")
    for frame, key, what in ((data.requests, "request", "requests"), (data.items, "item", "items")):
        if frame[key].duplicated().any():
            raise InputError(f"{data.name}: duplicate {key} ids in {what}")
        unknown = set(s[key].unique()) - set(frame[key])
        if unknown:
            raise InputError(
                f"{data.name}: {len(unknown)} sample {key}(s) have no row in {what}, e.g. {min(unknown)}"
            )
    if data.cold_domain is not None and data.cold_domain not in set(s["domain"]):
        raise InputError(f"{data.name}: cold-start domain {data.cold_domain!r} has no samples")
    return data
