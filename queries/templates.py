"""Backend-internal Cypher templates (``queries/system/*.cypher``) and their safe rendering.

A template file holds sections that start with ``// name: NAME``. ``{{placeholder}}`` slots take
only names the schema has validated, or fragments built from them; :func:`render` refuses
anything that could open a string literal, a comment or a second statement, so user input can
never become Cypher text. Values always travel as ``$parameters``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from graph.errors import QueryError

SYSTEM_DIR = Path(__file__).parent / "system"
_SECTION = re.compile(r"^// name: (\w+)\s*$", re.MULTILINE)
_SLOT = re.compile(r"\{\{(\w+)\}\}")
_SAFE_FRAGMENT = re.compile(r"^[A-Za-z0-9_ ,.()=:$|\[\]<>-]+$")


def parse_sections(text: str) -> dict[str, str]:
    """Split a template file into {name: query text} (comments before the first name dropped)."""
    parts = _SECTION.split(text)
    sections: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("//")]
        sections[name] = "\n".join(lines).strip()
    return sections


@cache
def _load(dialect: str) -> dict[str, str]:
    sections = parse_sections((SYSTEM_DIR / "common.cypher").read_text())
    sections.update(parse_sections((SYSTEM_DIR / f"{dialect}.cypher").read_text()))
    return sections


def template(dialect: str, name: str) -> str:
    """The raw template ``name`` for ``dialect`` (its own file first, then common.cypher)."""
    try:
        return _load(dialect)[name]
    except KeyError:
        raise QueryError(f"no internal template {name!r} for dialect {dialect!r}") from None


def render(text: str, **slots: str | int) -> str:
    """Fill ``{{slot}}`` placeholders with schema-validated names or fragments built from them."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in slots:
            raise QueryError(f"template slot {{{{{key}}}}} was not given a value")
        value = str(slots[key])
        if not _SAFE_FRAGMENT.match(value):
            raise QueryError(f"refusing unsafe text for template slot {key!r}: {value!r}")
        return value

    return _SLOT.sub(fill, text)


def system_query(dialect: str, name: str, **slots: str | int) -> str:
    """Render the internal template ``name`` of ``dialect``."""
    return render(template(dialect, name), **slots)
