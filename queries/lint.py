"""Lint Cypher with Neo4j's own linter, offline.

Neo4j ships its Cypher parser and semantic checks as the npm package
``@neo4j-cypher/language-support``; ``queries/lint/lint.mjs`` runs its ``lintCypherQuery`` on a
JSON batch read from stdin. This module is the typed Python side: one ``node`` process per batch,
diagnostics back as :class:`Diagnostic`. Severity follows the Language Server Protocol
(1 error, 2 warning, 3 information, 4 hint); ``line`` and ``character`` are 0-based.

Typical use: lint every Neo4j-dialect query of the library with the schema's labels and relation
types and sample parameters, so a typo (``RETRUN``), an undeclared ``$param`` (error) or a label
the schema lacks (warning) is caught without a database.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.errors import QueryError

PACKAGE = "@neo4j-cypher/language-support"
TIMEOUT_S = 120
_INSTALL_HINT = "install Node.js 20 (it brings npm) and run `make test`"


@dataclass(frozen=True)
class LintItem:
    """One query to lint, with the schema and parameters it will run against."""

    name: str
    query: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    labels: Sequence[str] = ()
    relationship_types: Sequence[str] = ()


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the linter about the query called ``name``."""

    name: str
    severity: int
    message: str
    line: int
    character: int

    @property
    def is_error(self) -> bool:
        return self.severity == 1


def lint_dir() -> Path:
    return Path(__file__).parent / "lint"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise QueryError(f"`{name}` is not on PATH; the Cypher linter needs it: {_INSTALL_HINT}")
    return path


def ensure_linter() -> Path:
    """Install the linter's npm dependencies if they are missing; return the lint folder."""
    folder = lint_dir()
    if (folder / "node_modules" / PACKAGE).is_dir():
        return folder
    npm = _tool("npm")
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise QueryError(
            f"`npm ci` in {folder} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}\n"
            f"check that the npm registry is reachable, or {_INSTALL_HINT}"
        )
    return folder


def _payload(items: Sequence[LintItem]) -> str:
    return json.dumps(
        [
            {
                "name": item.name,
                "query": item.query,
                "parameters": dict(item.parameters),
                "labels": list(item.labels),
                "relationshipTypes": list(item.relationship_types),
            }
            for item in items
        ],
        default=str,
    )


def _run_node(folder: Path, payload: str) -> list[dict[str, Any]]:
    cmd = [_tool("node"), str(folder / "lint.mjs")]
    try:
        proc = subprocess.run(
            cmd,
            input=payload,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise QueryError(f"the Cypher linter took over {TIMEOUT_S} s; lint fewer queries") from err
    if proc.returncode != 0:
        raise QueryError(f"the Cypher linter failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def lint_cypher(items: Sequence[LintItem]) -> list[Diagnostic]:
    """Lint every item in one ``node`` process; return all diagnostics, in item order."""
    if not items:
        return []
    results = _run_node(ensure_linter(), _payload(items))
    return [
        Diagnostic(
            name=str(r["name"]),
            severity=int(d["severity"]),
            message=str(d["message"]),
            line=int(d["line"]),
            character=int(d["character"]),
        )
        for r in results
        for d in r["diagnostics"]
    ]
