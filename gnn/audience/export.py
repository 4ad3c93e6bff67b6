"""`mokg audience export`: a scored audience to a file, with the guards ad platforms also apply.

- **Minimum size**: a policy floor per deployment (``MOKG_AUDIENCE_MIN_SIZE``, default 100) that
  ``min_size`` may raise but never lower; an audience below it is refused before anything is
  written: small audiences make individuals identifiable. Sizes must be positive.
- **Pseudonymous ids only**: the file holds ``user_id`` and ``score`` (plus rank, method and graph
  version); other attributes (the user's active domains) only with ``with_attributes``. With
  ``hash_salt`` ids become ``sha256(salt + ":" + id)`` (hex); the salt must have at least
  :data:`MIN_SALT_LENGTH` characters (a short one is guessed by enumerating ids) and is never
  written anywhere.
- **Never half-written, never over a file by surprise**: the audience and its manifest go to temp
  files beside the targets and are renamed into place only when both are complete (the old
  manifest is removed first, so a manifest never describes another audience's file; it records the
  file's sha256). An existing ``out`` is replaced only with ``overwrite``.
- **Audit log**: every export attempt appends a ``started`` line to the append-only audit log
  before any work, then its outcome (``written``, ``refused`` or ``failed``), under one run id;
  a killed export leaves its ``started`` line. An export killed after its files were renamed into
  place but before its ``written`` line gets that line from the next attempt on the same ``out``
  (marked ``recovered``): the manifest is renamed last, so its presence proves the write.

The manifest (``FILE.manifest.json``) records campaign, method, counts, the score distribution,
the export's run id, time, graph version, config and code version.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from gnn.audience.base import AudienceError, Targeter, config_hash, load_campaign
from graph import files
from graph.errors import MokgError
from graph.store import GraphStore
from graph.version import code_version

FORMATS = (".parquet", ".csv")
MIN_SIZE_ENV = "MOKG_AUDIENCE_MIN_SIZE"
DEFAULT_MIN_SIZE = 100
MIN_SALT_LENGTH = 16


@dataclass(frozen=True)
class ExportConfig:
    """Args: campaign, size (top N users), method; out: ``.parquet`` or ``.csv``; min_size: the
    smallest audience allowed, at least the deployment's floor (None: the floor itself);
    hash_salt: hash ids with this salt; with_attributes: add the users' active domains;
    audit_log: the JSON-lines audit log; overwrite: replace an existing ``out``."""

    campaign: str
    size: int
    method: str
    out: Path
    min_size: int | None = None
    hash_salt: str | None = None
    with_attributes: bool = False
    audit_log: Path = Path("mokg-data/audience-audit.jsonl")
    overwrite: bool = False


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def policy_min_size(env: Mapping[str, str] | None = None) -> int:
    """The deployment's floor on audience size: ``$MOKG_AUDIENCE_MIN_SIZE`` (default 100)."""
    text = (os.environ if env is None else env).get(MIN_SIZE_ENV, str(DEFAULT_MIN_SIZE)).strip()
    if not text.isdigit() or int(text) < 1:
        raise AudienceError(f"{MIN_SIZE_ENV}={text!r} is not a positive integer; fix the deployment setting")
    return int(text)


def min_size(config: ExportConfig) -> int:
    """The smallest audience this request may export: the floor, or a higher ``min_size``."""
    floor = policy_min_size()
    if config.min_size is None:
        return floor
    if config.min_size < floor:
        raise AudienceError(
            f"--min-size {config.min_size} is below this deployment's floor of {floor} "
            f"({MIN_SIZE_ENV}); a flag may raise the minimum, never lower it"
        )
    return config.min_size


def check_request(config: ExportConfig) -> None:
    """Refuse a bad request before any scoring: format, sizes, salt, and the destination."""
    if config.out.suffix not in FORMATS:
        raise AudienceError(f"--out must end in {' or '.join(FORMATS)}, got {config.out.name!r}")
    if config.size < 1 or (config.min_size is not None and config.min_size < 1):
        raise AudienceError(f"sizes must be positive, got --size {config.size} --min-size {config.min_size}")
    least = min_size(config)
    if config.size < least:
        raise AudienceError(
            f"an audience of {config.size} users is below the minimum of {least}; "
            "ask for more users (smaller audiences can identify people)"
        )
    if config.hash_salt is not None and len(config.hash_salt) < MIN_SALT_LENGTH:
        raise AudienceError(
            f"--hash-salt has {len(config.hash_salt)} characters; give a secret of at least "
            f"{MIN_SALT_LENGTH} (a short salt is found by hashing every id), or leave it out"
        )
    _check_destination(config)


def _check_destination(config: ExportConfig) -> None:
    try:
        files.target(config.out)
    except MokgError as exc:
        raise AudienceError(str(exc)) from None
    if not config.overwrite and (config.out.exists() or manifest_path(config.out).exists()):
        raise AudienceError(f"{config.out} exists; pass --overwrite to replace it, or choose another --out")
    parent = config.out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudienceError(
            f"cannot write to {config.out}: its folder cannot be created ({exc.strerror or exc})"
        ) from None
    if not os.access(parent, os.W_OK) or (config.out.exists() and not os.access(config.out, os.W_OK)):
        raise AudienceError(f"cannot write to {config.out}: permission denied; choose another --out")


def pseudonymise(ids: pd.Series, salt: str | None) -> pd.Series:
    """Ids as they are, or ``sha256(salt:id)`` hex digests."""
    if salt is None:
        return ids.astype(str)
    return ids.astype(str).map(lambda x: hashlib.sha256(f"{salt}:{x}".encode()).hexdigest())


def audience_frame(
    ranked: pd.DataFrame, config: ExportConfig, graph_version: str, store: GraphStore
) -> pd.DataFrame:
    """The top ``size`` users of a ranking as the exported table."""
    top = ranked.head(config.size).reset_index(drop=True)
    least = min_size(config)
    if len(top) < least:
        raise AudienceError(
            f"only {len(top)} users could be scored for {config.campaign!r}, below the minimum of "
            f"{least}; the store is too small for this export"
        )
    out = pd.DataFrame(
        {
            "user_id": pseudonymise(top["user_id"], config.hash_salt),
            "score": top["score"].astype(float),
            "rank": range(1, len(top) + 1),
            "method": config.method,
            "graph_version": graph_version,
        }
    )
    if config.with_attributes:
        active = store.edge_table(("User", "ACTIVE_IN", "Domain"))
        domains = active.groupby("head")["tail"].apply(lambda s: ",".join(sorted(map(str, s))))
        out["active_domains"] = top["user_id"].map(domains).fillna("").to_numpy()
    return out


def _write_table(df: pd.DataFrame, path: Path, suffix: str) -> None:
    if suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)


def write_export(df: pd.DataFrame, manifest: dict[str, Any], out: Path) -> None:
    """Both files to temp names beside their targets, then renamed into place; nothing is left
    behind on error. The old manifest goes first, so a manifest never sits beside another file."""
    try:
        data, man = files.target(out), files.target(manifest_path(out))
    except MokgError as exc:
        raise AudienceError(str(exc)) from None
    tmp_data = data.with_name(f".{data.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp_man = man.with_name(f".{man.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        _write_table(df, tmp_data, out.suffix)
        digest = hashlib.sha256(tmp_data.read_bytes()).hexdigest()
        tmp_man.write_text(json.dumps({**manifest, "sha256": digest}, indent=2, default=str))
        man.unlink(missing_ok=True)
        os.replace(tmp_data, data)
        os.replace(tmp_man, man)
    except OSError as exc:
        raise AudienceError(f"cannot write to {out}: {exc.strerror or exc}") from None
    finally:
        tmp_data.unlink(missing_ok=True)
        tmp_man.unlink(missing_ok=True)


def append_audit(log: Path, entry: dict[str, Any]) -> None:
    """One JSON line appended (O_APPEND) to the audit log; earlier lines are never rewritten.

    The log must be a regular file (or a new one): a FIFO or device such as /dev/null is refused.
    """
    try:
        real = files.target(log)
        real.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(real, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except (MokgError, OSError) as exc:
        problem = str(exc) if isinstance(exc, MokgError) else exc.strerror or str(exc)
        raise AudienceError(
            f"cannot append to the audit log {log} ({problem}); no export without it"
        ) from None
    try:
        os.write(fd, (json.dumps(entry, default=str, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def _attempt(config: ExportConfig) -> dict[str, Any]:
    return {
        "run_id": f"audience-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "campaign": config.campaign,
        "method": config.method,
        "size": config.size,
        "min_size": config.min_size,
        "out": str(config.out),
        "hashed": config.hash_salt is not None,
        "with_attributes": config.with_attributes,
    }


def _run_statuses(log: Path, run_id: str) -> set[str]:
    if not log.is_file():  # a FIFO or device is never read (it would block); a missing log has none
        return set()
    statuses = set()
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("run_id") == run_id:
            statuses.add(str(entry.get("status")))
    return statuses


def close_interrupted(config: ExportConfig) -> dict[str, Any] | None:
    """Append the ``written`` line an earlier export to ``config.out`` never got; return it.

    An export killed between renaming its manifest into place and appending its outcome leaves a
    ``started`` line only, although its file landed (the manifest is renamed last). Its line is
    rebuilt from the manifest, marked ``recovered``. Nothing happens when the manifest is missing
    or unreadable, or its run already has an outcome.
    """
    try:
        manifest = json.loads(manifest_path(config.out).read_text())
    except (OSError, ValueError):
        return None
    run_id = manifest.get("run_id") if isinstance(manifest, dict) else None
    if not isinstance(run_id, str) or _run_statuses(config.audit_log, run_id) != {"started"}:
        return None
    keys = [*_attempt(config), "count"]
    line = {**{k: manifest[k] for k in keys if k in manifest}, "status": "written", "recovered": True}
    append_audit(config.audit_log, line)
    return line


@contextmanager
def audited(config: ExportConfig) -> Iterator[dict[str, Any]]:
    """Audit one export attempt: a ``started`` line now, then ``written``, ``refused`` or ``failed``.

    First closes an earlier attempt on the same ``out`` that was killed after writing
    (:func:`close_interrupted`).

    Yields the attempt's entry (its ``run_id``); set ``entry["count"]`` once the file is written.
    """
    entry = _attempt(config)
    close_interrupted(config)
    append_audit(config.audit_log, {**entry, "status": "started"})
    try:
        yield entry
    except AudienceError as exc:
        append_audit(config.audit_log, {**entry, "status": "refused", "reason": str(exc)})
        raise
    except BaseException as exc:  # interrupted or crashed: nothing was renamed into place
        append_audit(config.audit_log, {**entry, "status": "failed", "reason": repr(exc)})
        raise
    append_audit(config.audit_log, {**entry, "status": "written"})


def _as_json(config: Any) -> Any:
    if config is None or not is_dataclass(config) or isinstance(config, type):
        return None
    return json.loads(json.dumps(asdict(config), default=str))


def _distribution(scores: pd.Series) -> dict[str, float]:
    q = scores.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).to_numpy()
    return {"min": q[0], "p25": q[1], "median": q[2], "p75": q[3], "max": q[4], "mean": float(scores.mean())}


def export_audience(
    store: GraphStore,
    targeter: Targeter,
    method_config: Any,
    config: ExportConfig,
    attempt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score, guard, write and audit one audience export; return its manifest.

    ``targeter`` must already be fitted on ``store`` with ``method_config``. ``attempt`` is the
    entry of an :func:`audited` block the caller opened (to audit its own checks and the fit);
    without it the export audits itself.
    """
    if attempt is None:
        with audited(config) as entry:
            return _export(store, targeter, method_config, config, entry)
    return _export(store, targeter, method_config, config, attempt)


def _export(
    store: GraphStore, targeter: Targeter, method_config: Any, config: ExportConfig, entry: dict[str, Any]
) -> dict[str, Any]:
    check_request(config)
    load_campaign(store, config.campaign)
    version = store.version()
    df = audience_frame(targeter.score(config.campaign), config, str(version), store)
    manifest = {
        **entry,
        "min_size": min_size(config),
        "count": len(df),
        "positive_scores": int((df["score"] > 0).sum()),
        "score_distribution": _distribution(df["score"]),
        "graph_version": version.as_dict(),
        "method_config": _as_json(method_config),
        "method_config_hash": config_hash(method_config) if method_config is not None else None,
        "code_version": code_version(),
        "columns": list(df.columns),
    }
    write_export(df, manifest, config.out)
    entry["count"] = len(df)
    return manifest
