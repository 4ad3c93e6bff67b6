"""Neo4j's own linter, run offline through ``queries.lint`` (needs Node.js, as CI has).

Every case is linted in one batch (one ``node`` process, about a second) by a module fixture;
each test then checks the diagnostics of its own cases.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from graph.errors import QueryError
from graph.schema import SCHEMA
from queries.lint import Diagnostic, LintItem, ensure_linter, lint_cypher

LABELS = sorted(SCHEMA.labels)
REL_TYPES = sorted(SCHEMA.rel_types)

CASES: dict[str, tuple[str, dict[str, object]]] = {
    "valid": (
        "UNWIND $rows AS row MATCH (u:User {id: row.id}) RETURN u.name AS name LIMIT $k",
        {"rows": [{"id": "u1"}], "k": 5},
    ),
    "typo": ("MATCH (u:User) RETRUN u", {}),
    "undefined_param": ("MATCH (u:User) WHERE u.id = $missing RETURN u", {}),
    "unknown_names": ("MATCH (u:User)-[:LIKES]->(f:Foo) RETURN f", {}),
    **{f"label_{x}": (f"MATCH (n:{x}) RETURN n.id AS id", {}) for x in LABELS},
    **{f"rel_{x}": (f"MATCH ()-[r:{x}]->() RETURN r.confidence AS c", {}) for x in REL_TYPES},
}


@pytest.fixture(scope="module")
def diags() -> dict[str, list[Diagnostic]]:
    assert shutil.which("node"), "the Cypher linter needs Node.js 20 on PATH (CI has it)"
    items = [
        LintItem(name, query, params, labels=LABELS, relationship_types=REL_TYPES)
        for name, (query, params) in CASES.items()
    ]
    found: dict[str, list[Diagnostic]] = {name: [] for name in CASES}
    for d in lint_cypher(items):
        found[d.name].append(d)
    return found


def test_valid_parameterised_query_is_clean(diags: dict[str, list[Diagnostic]]) -> None:
    assert diags["valid"] == []


def test_typo_is_an_error(diags: dict[str, list[Diagnostic]]) -> None:
    first = diags["typo"][0]
    assert first.is_error and first.severity == 1
    assert "RETRUN" in first.message
    assert (first.line, first.character) == (0, 15)


def test_undefined_parameter_is_an_error(diags: dict[str, list[Diagnostic]]) -> None:
    found = [(d.severity, d.message) for d in diags["undefined_param"]]
    assert found == [(1, "Parameter $missing is not defined.")]


def test_unknown_label_and_rel_type_are_warnings(diags: dict[str, list[Diagnostic]]) -> None:
    found = diags["unknown_names"]
    assert [d.severity for d in found] == [2, 2]
    assert not any(d.is_error for d in found)
    assert "LIKES" in found[0].message
    assert "Foo" in found[1].message


def test_schema_labels_and_rel_types_pass(diags: dict[str, list[Diagnostic]]) -> None:
    names = [name for name in CASES if name.startswith(("label_", "rel_"))]
    assert {name: diags[name] for name in names} == {name: [] for name in names}


def test_empty_batch_starts_no_process() -> None:
    assert lint_cypher([]) == []


def test_linter_folder_is_installed() -> None:
    folder = ensure_linter()
    assert (folder / "lint.mjs").is_file()
    assert (folder / "node_modules" / "@neo4j-cypher" / "language-support").is_dir()


def test_missing_node_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(QueryError, match=r"Node\.js 20"):
        lint_cypher([LintItem("q", "RETURN 1 AS one")])
