"""What ad-hoc Cypher text may be before any parser sees it, and what it may not touch.

Read-only is enforced by the databases themselves (a read-only transaction, one prepared
statement per call; see the backends). What a read-only transaction still allows, this module
refuses: statements and table functions that read or write files (``LOAD``, ``COPY``,
``EXPORT``/``IMPORT DATABASE``, ``READ_CSV``/``READ_PARQUET``/``apoc.load.*`` …), procedures
outside a short list of catalogue ones, settings (``CALL timeout=0``) and transaction control.
Text longer than ``max_chars`` or with brackets nested deeper than ``max_depth`` is refused
before parsing: LadybugDB's parser crashes the process on 3,000 nested parentheses and takes
time quadratic in the number of terms of one expression.
"""

from __future__ import annotations

import re

from graph.errors import QueryError

CATALOGUE_CALLS = {
    "embedded": frozenset(
        {
            "show_tables",
            "table_info",
            "show_connection",
            "show_functions",
            "show_indexes",
            "show_sequences",
            "show_macros",
            "show_warnings",
            "show_graphs",
            "db_version",
            "storage_version",
            "catalog_version",
            "current_setting",
        }
    ),
    "neo4j": frozenset(
        {
            "db.labels",
            "db.relationshiptypes",
            "db.propertykeys",
            "db.schema.visualization",
            "db.schema.nodetypeproperties",
            "db.schema.reltypeproperties",
            "dbms.components",
        }
    ),
}
FILE_WORDS = frozenset({"LOAD", "COPY", "EXPORT", "IMPORT", "ATTACH", "INSTALL", "USE"})
TX_WORDS = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "CHECKPOINT"})
_OPEN, _CLOSE = "([{", ")]}"
_WORD = re.compile(r"(?<![.$\w])([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)")


def code_of(query: str, max_depth: int) -> str:
    """The text with string literals, quoted names and comments blanked out; refuses brackets
    nested deeper than ``max_depth`` (0 = no limit). One pass, no recursion."""
    out: list[str] = []
    depth, i, n = 0, 0, len(query)
    while i < n:
        ch = query[i]
        end = _skip(query, i)
        if end > i:
            out.append(" ")
            i = end
            continue
        if ch in _OPEN:
            depth += 1
            if max_depth and depth > max_depth:
                raise QueryError(
                    f"the query nests brackets more than {max_depth} deep (max_query_depth; "
                    "MOKG_MAX_QUERY_DEPTH): flatten it or pass values as $parameters"
                )
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        out.append(ch)
        i += 1
    return "".join(out)


def _skip(text: str, i: int) -> int:
    """End of the literal or comment starting at ``i`` (``i`` itself if none starts there)."""
    ch, nxt = text[i], text[i + 1 : i + 2]
    if ch == "/" and nxt == "/":
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if ch == "/" and nxt == "*":
        end = text.find("*/", i + 2)
        return len(text) if end < 0 else end + 2
    if ch == "`":
        end = text.find("`", i + 1)
        return len(text) if end < 0 else end + 1
    if ch in "'\"":
        j = i + 1
        while j < len(text) and text[j] != ch:
            j += 2 if text[j] == "\\" else 1
        return min(j + 1, len(text))
    return i


def check_query_text(query: str, dialect: str, *, max_chars: int, max_depth: int) -> None:
    """Refuse ad-hoc Cypher that is too large, too deep, or touches files, settings or
    transactions (see the module docstring). Raises :class:`QueryError` naming the limit."""
    if max_chars and len(query) > max_chars:
        raise QueryError(
            f"the query is {len(query):,} characters, over the limit of {max_chars:,} "
            "(max_query_chars; MOKG_MAX_QUERY_CHARS): pass long values as $parameters"
        )
    code = code_of(query, max_depth)
    words = [(m.group(1), m.end()) for m in _WORD.finditer(code)]
    if words and words[0][0].upper() in TX_WORDS:
        raise QueryError(
            f"{words[0][0].upper()} is not allowed: mokg runs each query as one statement in its "
            "own transaction"
        )
    for k, (word, end) in enumerate(words):
        upper = word.upper()
        if upper in FILE_WORDS:
            raise QueryError(
                f"{upper} is not allowed in `mokg cypher` (it reads or writes files or other "
                "databases): load data with `mokg load` / `mokg ingest`, export with `mokg export`"
            )
        if upper == "CALL" and k + 1 < len(words):
            _check_call(code, words[k + 1], end, dialect)


def _check_call(code: str, callee: tuple[str, int], call_end: int, dialect: str) -> None:
    name, end = callee
    between = code[call_end : end - len(name)]
    if between.strip():  # CALL { … } or CALL (x) { … }: a subquery, not a procedure
        return
    setting = code[end:].lstrip().startswith("=")
    allowed = CATALOGUE_CALLS.get(dialect, frozenset())
    if setting or name.lower() not in allowed:
        what = "changes a setting" if setting else "is not a catalogue procedure"
        raise QueryError(
            f"CALL {name} {what}; `mokg cypher` may only CALL: {', '.join(sorted(allowed))} "
            "(table functions that read files are refused)"
        )
