"""`mokg audience export`: a scored audience to a file, with the guards ad platforms also apply.

- **Minimum size**: fewer than ``min_size`` users (default 100) is refused with a clear error
  before anything is written: small audiences make individuals identifiable.
- **Pseudonymous ids only**: the file holds ``user_id`` and ``score`` (plus rank, method and graph
  version); other attributes (the user's active domains) only with ``with_attributes``. With
  ``hash_salt`` ids become ``sha256(salt + ":" + id)`` (hex); the salt is never written anywhere.
- **Never half-written**: the audience and its manifest go to temp files beside the targets and
  are renamed into place only when both are complete; a failure removes the temp files.
- **Audit log**: every export attempt (written or refused) appends one JSON line to the
  append-only audit log.

The manifest (``FILE.manifest.json``) records campaign, method, counts, the score distribution,
the export's run id, time, graph version, config and code version.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from gnn.audience.base import AudienceError, Targeter, config_hash, load_campaign
from graph.store import GraphStore

FORMATS = (".parquet", ".csv")


@dataclass(frozen=True)
class ExportConfig:
    """Args: campaign, size (top N users), method; out: ``.parquet`` or ``.csv``; min_size: the
    smallest audience allowed; hash_salt: hash ids with this salt; with_attributes: add the users'
    active domains; audit_log: the JSON-lines audit log."""

    campaign: str
    size: int
    method: str
    out: Path
    min_size: int = 100
    hash_salt: str | None = None
    with_attributes: bool = False
    audit_log: Path = Path("mokg-data/audience-audit.jsonl")


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def check_request(config: ExportConfig) -> None:
    """Refuse a bad request before any scoring: format, size, and a writable destination."""
    if config.out.suffix not in FORMATS:
        raise AudienceError(f"--out must end in {' or '.join(FORMATS)}, got {config.out.name!r}")
    if config.size < config.min_size:
        raise AudienceError(
            f"an audience of {config.size} users is below the minimum of {config.min_size}; "
            "ask for more users (smaller audiences can identify people)"
        )
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
    if len(top) < config.min_size:
        raise AudienceError(
            f"only {len(top)} users could be scored for {config.campaign!r}, below the minimum of "
            f"{config.min_size}; the store is too small for this export"
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
    """Both files to temp names beside the targets, then renamed; nothing is left behind on error."""
    tmp_data = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    man = manifest_path(out)
    tmp_man = man.with_name(f".{man.name}.tmp-{os.getpid()}")
    try:
        _write_table(df, tmp_data, out.suffix)
        tmp_man.write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(tmp_data, out)
        os.replace(tmp_man, man)
    except OSError as exc:
        raise AudienceError(f"cannot write to {out}: {exc.strerror or exc}") from None
    finally:
        tmp_data.unlink(missing_ok=True)
        tmp_man.unlink(missing_ok=True)


def append_audit(log: Path, entry: dict[str, Any]) -> None:
    """One JSON line appended (O_APPEND) to the audit log; earlier lines are never rewritten."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry, default=str, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def audit_refusal(config: ExportConfig, exc: Exception) -> None:
    """Log a request refused before scoring (the CLI checks cheap things before the fit)."""
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "campaign": config.campaign,
        "method": config.method,
        "size": config.size,
        "out": str(config.out),
    }
    append_audit(config.audit_log, {**entry, "status": "refused", "reason": str(exc)})


def _as_json(config: Any) -> Any:
    if config is None or not is_dataclass(config) or isinstance(config, type):
        return None
    return json.loads(json.dumps(asdict(config), default=str))


def _distribution(scores: pd.Series) -> dict[str, float]:
    q = scores.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).to_numpy()
    return {"min": q[0], "p25": q[1], "median": q[2], "p75": q[3], "max": q[4], "mean": float(scores.mean())}


def export_audience(
    store: GraphStore, targeter: Targeter, method_config: Any, config: ExportConfig
) -> dict[str, Any]:
    """Score, guard, write and audit one audience export; return its manifest.

    ``targeter`` must already be fitted on ``store`` with ``method_config``.
    """
    from graph.version import code_version

    run_id = f"audience-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    audit: dict[str, Any] = {
        "run_id": run_id,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "campaign": config.campaign,
        "method": config.method,
        "size": config.size,
        "min_size": config.min_size,
        "out": str(config.out),
        "hashed": config.hash_salt is not None,
        "with_attributes": config.with_attributes,
    }
    try:
        check_request(config)
        load_campaign(store, config.campaign)
        version = store.version()
        df = audience_frame(targeter.score(config.campaign), config, str(version), store)
        manifest = {
            **audit,
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
    except AudienceError as exc:
        append_audit(config.audit_log, {**audit, "status": "refused", "reason": str(exc)})
        raise
    except BaseException as exc:  # interrupted or crashed: nothing was renamed into place
        append_audit(config.audit_log, {**audit, "status": "failed", "reason": repr(exc)})
        raise
    append_audit(config.audit_log, {**audit, "status": "written", "count": len(df)})
    return manifest
