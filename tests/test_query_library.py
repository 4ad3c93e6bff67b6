"""The named query library: headers, parameter binding, safe rendering, and static validation of
every Neo4j-dialect query (library and internal templates) with Neo4j's own Cypher linter."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from graph.errors import QueryError
from graph.schema import SCHEMA
from queries.library import DIALECTS, load_library, parse_file
from queries.lint import Diagnostic, LintItem, lint_cypher
from queries.templates import _load, render

LABELS = sorted(SCHEMA.labels)
REL_TYPES = sorted(SCHEMA.rel_types)
SAMPLE_SLOTS: dict[str, str | int] = {
    "label": "User",
    "head": "User",
    "tail": "Intent",
    "rel": "HAS_INTENT",
    "hops": 2,
    "index": "mokg_user_id",
    "columns": "n.id AS id",
}
SAMPLE_VALUES: dict[str, Any] = {
    "rows": [{"id": "u1", "head": "u1", "tail": "i1"}],
    "ids": ["u1"],
    "run_id": "r1",
    "now": datetime(2026, 1, 1).isoformat(),
    "id": "r1",
    "seq": 1,
    "kind": "k",
    "status": "done",
    "note": "",
    "source": "s",
    "host": "h",
    "pid": 1,
    "token": "t",
}


WRITES = {"forget_user_thoughts", "forget_thought_changes"}  # a user's memory deleted on request


def test_every_query_serves_both_dialects_and_documents_itself() -> None:
    lib = load_library()
    assert len(lib.names()) >= 9
    for name in lib.names():
        q = lib.get(name)
        assert set(q.texts) == set(DIALECTS), name
        assert q.description, name
        assert q.writes == (name in WRITES), name  # only the deletions write


def test_header_declares_every_parameter_the_text_uses() -> None:
    lib = load_library()
    for name in lib.names():
        q = lib.get(name)
        declared = {p.name for p in q.params}
        for text in q.texts.values():
            used = set(re.findall(r"\$(\w+)", text)) | set(re.findall(r"\{\{(\w+)\}\}", text))
            assert used == declared, (name, used ^ declared)


def _library_items() -> list[LintItem]:
    items = []
    lib = load_library()
    for name in lib.names():
        q = lib.get(name)
        given = {p.name: SAMPLE_SLOTS.get(p.type, "x") for p in q.params if p.required}
        given.update({p.name: "User" for p in q.params if p.type == "label"})
        text, params = q.bind("neo4j", given)
        items.append(LintItem(f"library:{name}", text, params, LABELS, REL_TYPES))
    return items


def _template_items() -> list[LintItem]:
    items = []
    for name, text in _load("neo4j").items():
        var = "e" if "{{rel}}" in text else "n"
        slots = dict(SAMPLE_SLOTS, set_clause=f"{var}.source = coalesce(r.source, {var}.source)")
        if var == "e":
            slots["columns"] = "e.confidence AS confidence"
        rendered = render(text, **slots)
        params = {k: v for k, v in SAMPLE_VALUES.items() if f"${k}" in rendered}
        items.append(LintItem(f"template:{name}", rendered, params, LABELS, REL_TYPES))
    return items


@pytest.fixture(scope="module")
def neo4j_diagnostics() -> tuple[list[LintItem], list[Diagnostic]]:
    items = _library_items() + _template_items()
    return items, lint_cypher(items)


def test_neo4j_queries_pass_neo4js_linter(
    neo4j_diagnostics: tuple[list[LintItem], list[Diagnostic]],
) -> None:
    items, diags = neo4j_diagnostics
    assert len(items) >= 25
    errors = [d for d in diags if d.is_error]
    unknown = [d for d in diags if "not present in the database" in d.message]
    for d in diags:  # reported in the test log either way
        print(f"{d.name}: severity {d.severity}: {d.message}")
    assert not errors, errors
    assert not unknown, unknown


def test_the_linter_would_catch_a_broken_library_query() -> None:
    text, params = load_library().get("user_intents").bind("neo4j", {"user_id": "u"})
    broken = text.replace("RETURN", "RETRUN").replace(":Intent", ":Intnet")
    diags = lint_cypher([LintItem("broken", broken, params, LABELS, REL_TYPES)])
    assert any(d.is_error for d in diags)
    assert any("Intnet" in d.message for d in diags)


def test_binding_coerces_cli_strings_and_fills_defaults() -> None:
    q = load_library().get("users_near_intent")
    text, params = q.bind("embedded", {"intent_id": "wedding", "hops": "3", "limit": "7"})
    assert params == {"intent_id": "wedding", "limit": 7}
    assert "[*1..3]" in text and "{{" not in text
    _, params = q.bind("neo4j", {"intent_id": "wedding"})
    assert params["limit"] == 100


def test_render_refuses_text_that_could_escape_a_slot() -> None:
    with pytest.raises(QueryError, match="unsafe"):
        render("MATCH (n:{{label}}) RETURN n", label="User) DETACH DELETE n //")
    with pytest.raises(QueryError, match="unsafe"):
        render("MATCH (n:{{label}}) RETURN n", label="User' OR '1'='1")
    with pytest.raises(QueryError, match="not given"):
        render("MATCH (n:{{label}}) RETURN n")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("// name: other\n// dialects: neo4j\nRETURN 1", "must match the file name"),
        ("// name: q\n// dialects: oracle\nRETURN 1", "dialects"),
        ("// name: q\n// param: x: colour\n// dialects: neo4j\nRETURN $x", "bad param"),
    ],
)
def test_bad_query_files_are_refused(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "q.cypher"
    path.write_text(text)
    with pytest.raises(QueryError, match=words):
        parse_file(path)
