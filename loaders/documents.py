"""Documents in: a folder of .txt/.md files, or JSON-lines / CSV with ``id,text[,title,url,domain,item]``.

Every document is read and checked before anything is mined or stored, so a bad file is named
with its reason (not UTF-8, no text, a repeated or over-long id, a row that is not an object) and
nothing is half-ingested. ``item`` names the Item a document is about (a product description, a
review); the item is created from the title when the store does not have it.

Folder: every ``*.txt`` and ``*.md`` below it, in path order; the id is the relative path without
its suffix, the title the first Markdown heading or else the first non-empty line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.errors import InputError

MAX_ID = 512
MAX_TEXT = 1_000_000
FIELDS = ("id", "text", "title", "url", "domain", "item")
SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class SourceDocument:
    id: str
    text: str
    title: str = ""
    url: str = ""
    domain: str = ""
    item: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class DocumentSet:
    source: Path
    documents: tuple[SourceDocument, ...]

    def sha256(self) -> str:
        """One hash of every id and text (a changed collection is a different build)."""
        digest = hashlib.sha256()
        for doc in self.documents:
            digest.update(f"{doc.id}\x1f{doc.item}\x1f{doc.sha256}\n".encode())
        return digest.hexdigest()


def _text_of(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); re-encode it as UTF-8"
        ) from None


def _title(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    heading = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), None)
    return (heading or (lines[0] if lines else ""))[:200]


def _folder(root: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    for path in files:
        text = _text_of(path)
        where = str(path)
        yield (
            where,
            {"id": path.relative_to(root).with_suffix("").as_posix(), "text": text, "title": _title(text)},
        )


def _jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in enumerate(_text_of(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {number}: not JSON ({exc.msg}); one object per line") from None
        if not isinstance(row, dict):
            raise InputError(f"{path} line {number}: a JSON object with id and text is expected")
        yield f"{path} line {number}", row


def _csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(_text_of(path), newline=""))
    missing = {"id", "text"} - set(reader.fieldnames or ())
    if missing:
        raise InputError(
            f"{path}: the header lacks {', '.join(sorted(missing))}; "
            "the columns are id,text[,title,url,domain,item]"
        )
    for number, row in enumerate(reader, start=2):
        yield f"{path} row {number}", dict(row)


def _document(where: str, row: dict[str, Any]) -> SourceDocument:
    values: dict[str, str] = {}
    for name in FIELDS:
        value = row.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InputError(f"{where}: column {name} must be text, not {type(value).__name__}")
        values[name] = str(value).strip() if name != "text" else str(value)
    if not values.get("id"):
        raise InputError(f"{where}: column id is empty; every document needs an id")
    if len(values["id"]) > MAX_ID:
        raise InputError(f"{where}: id is {len(values['id']):,} characters long (at most {MAX_ID})")
    if not values.get("text", "").strip():
        raise InputError(f"{where}: column text is empty")
    if len(values["text"]) > MAX_TEXT:
        raise InputError(
            f"{where}: text is {len(values['text']):,} characters (at most {MAX_TEXT:,}); split it"
        )
    return SourceDocument(**values)


def read_documents(path: Path) -> DocumentSet:
    """Every document under ``path``, checked; an ``InputError`` names the first bad one."""
    if not path.exists():
        raise InputError(f"--documents {path} does not exist")
    if path.is_dir():
        rows = _folder(path)
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = _jsonl(path)
    elif path.suffix.lower() == ".csv":
        rows = _csv(path)
    elif path.suffix.lower() in SUFFIXES:
        text = _text_of(path)
        rows = iter([(str(path), {"id": path.stem, "text": text, "title": _title(text)})])
    else:
        raise InputError(f"--documents {path}: give a folder of .txt/.md files, or a .jsonl or .csv file")
    docs: list[SourceDocument] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        doc = _document(where, row)
        if doc.id in seen:
            raise InputError(f"{where}: id {doc.id!r} repeats {seen[doc.id]}; ids must be unique")
        seen[doc.id] = where
        docs.append(doc)
    if not docs:
        raise InputError(f"--documents {path} holds no documents (.txt/.md files, or rows with id,text)")
    return DocumentSet(path, tuple(docs))
