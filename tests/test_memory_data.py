"""The memory data sets: GVD as shipped (consumers/memory/gvd.py) and the dialogues generated from the
world's hidden timelines (consumers/memory/world_dialogues.py)."""

from __future__ import annotations

import dataclasses
import shutil
import tomllib
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
import pytest

from consumers.memory.dialogue import MemoryData, Turn
from consumers.memory.gvd import GVD_DIR, load_gvd
from consumers.memory.world_dialogues import WorldDialogueConfig, generate_world_dialogues
from graph.errors import InputError
from loaders.world.ontology import load_ontology

ROOT = Path(__file__).resolve().parents[1]
SMALL = WorldDialogueConfig(users=40, sessions=5, seed=3)


@pytest.fixture(scope="module")
def gvd() -> MemoryData:
    return load_gvd()


def test_gvd_counts(gvd: MemoryData) -> None:
    assert gvd.name == "gvd"
    assert len(gvd.dialogues) == 15 and len(gvd.probes) == 100
    assert sum(p.answerable for p in gvd.probes) == 99
    assert Counter(p.kind for p in gvd.probes) == {"fact": 88, "false_premise": 7, "session": 5}
    assert sum(len(p.evidence) for p in gvd.probes) == 118  # the README's count
    names = {d.user for d in gvd.dialogues}
    assert {"Jason", "Linda", "Ivy", "Roland", "John Zhang"} <= names  # keys with stray spaces
    assert all(d.user == d.user.strip() and d.name == d.user for d in gvd.dialogues)


def test_gvd_sessions(gvd: MemoryData) -> None:
    john = gvd.dialogue("John Zhang")
    assert len(john.sessions) == 9 and "John Zhang/2023-05-05" not in {s.id for s in john.sessions}
    emily = gvd.dialogue("Emily")
    assert emily.sessions[0].id == "Emily/2023-04-27" and emily.sessions[0].at == "2023-04-27"
    assert emily.sessions[0].turns[0].query.startswith("Hello, my name is Emily")
    assert all(p.asked_at == "2023-05-07" for p in gvd.probes)


def test_gvd_evidence_exists(gvd: MemoryData) -> None:
    for p in gvd.probes:
        turns = {tid for tid, _, _ in gvd.dialogue(p.user).turns()}
        assert set(p.evidence) <= turns, p.qid
        assert {a for pair in p.alt_evidence for a in pair} <= turns, p.qid
        assert bool(p.evidence) == p.answerable == bool(p.answers), p.qid


def test_gvd_roland_and_john(gvd: MemoryData) -> None:
    probes = {p.qid: p for p in gvd.probes}
    assert probes["Roland-0"].alt_evidence == (("Roland/2023-04-30#5", "Roland/2023-04-30#1"),)
    assert probes["Roland-2"].alt_evidence == (
        ("Roland/2023-04-30#5", "Roland/2023-04-30#1"),
        ("Roland/2023-04-30#6", "Roland/2023-04-30#2"),
    )
    assert probes["Roland-2"].kind == "session"
    assert [q for q, p in probes.items() if p.alt_evidence] == ["Roland-0", "Roland-1", "Roland-2"]
    john = probes["John Zhang-4"]
    assert not john.answerable and john.evidence == () and john.answers == ()
    assert john.question == '"What dish did I make on May 5th?"'
    assert probes["Lucy-6"].kind == "false_premise" and probes["Lucy-6"].evidence == ("Lucy/2023-04-28#1",)


def test_gvd_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read GVD file"):
        load_gvd(tmp_path)
    for name in ("memory_bank_en.json", "probing_questions_en.jsonl", "gvd_en_evidence.jsonl"):
        shutil.copy(GVD_DIR / name, tmp_path / name)
    (tmp_path / "gvd_en_evidence.jsonl").write_text('{"user": "Emily"}\n')
    with pytest.raises(InputError, match="malformed"):
        load_gvd(tmp_path)
    lines = (GVD_DIR / "gvd_en_evidence.jsonl").read_text().splitlines()
    (tmp_path / "gvd_en_evidence.jsonl").write_text("\n".join(lines[1:]) + "\n")  # one label missing
    with pytest.raises(InputError, match="do not match"):
        load_gvd(tmp_path)
    bad = lines[0].replace('"turn": 3', '"turn": 30')
    (tmp_path / "gvd_en_evidence.jsonl").write_text("\n".join([bad, *lines[1:]]) + "\n")
    with pytest.raises(InputError, match="Emily-0"):
        load_gvd(tmp_path)


def test_gvd_ships_with_the_package() -> None:
    """A fresh clone and an installed package both find the data: every file is in the package's
    package-data (pyproject), with the licence beside it."""
    names = {p.name for p in GVD_DIR.iterdir()}
    assert {"memory_bank_en.json", "probing_questions_en.jsonl", "gvd_en_evidence.jsonl"} <= names
    assert {"LICENSE-source", "README.md"} <= names
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "consumers.memory" in tool["packages"]
    globs = tool["package-data"].get("consumers.memory", [])
    for name in names:
        assert any(fnmatch(f"data/gvd/{name}", g) for g in globs), name


# --- the world ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(world_store: tuple[Path, Path]) -> Path:
    return world_store[0]


@pytest.fixture(scope="module")
def data(world: Path) -> MemoryData:
    return generate_world_dialogues(world, SMALL)


def test_world_shape(data: MemoryData) -> None:
    assert data.name == "world" and len(data.dialogues) == SMALL.users
    for d in data.dialogues:
        assert 1 <= len(d.sessions) <= SMALL.sessions
        days = [s.at for s in d.sessions]
        assert days == sorted(set(days))
        assert all(s.id == f"{d.user}/{s.at}" and s.turns for s in d.sessions)
    kinds = Counter(p.kind for p in data.probes)
    assert kinds["fact"] > 0 and kinds["changed"] > 0 and set(kinds) <= {"fact", "changed"}


def test_world_is_deterministic(world: Path, data: MemoryData) -> None:
    assert generate_world_dialogues(world, SMALL) == data
    other = generate_world_dialogues(world, dataclasses.replace(SMALL, seed=4))
    assert {d.user for d in other.dialogues} != {d.user for d in data.dialogues}
    fewer = generate_world_dialogues(world, dataclasses.replace(SMALL, users=5))
    assert set(fewer.dialogues) <= set(data.dialogues) and set(fewer.probes) <= set(data.probes)


def test_world_evidence_precedes_the_question(data: MemoryData) -> None:
    for p in data.probes:
        turns = {tid: at for tid, at, _ in data.dialogue(p.user).turns()}
        assert p.evidence and all(t in turns and turns[t] < p.asked_at for t in p.evidence), p.qid
        last = data.dialogue(p.user).sessions[-1].at
        assert p.asked_at == (pd.Timestamp(last) + pd.Timedelta(days=1)).date().isoformat()
        assert p.answers and all(a.strip() for a in p.answers) and p.mentions


def test_world_gold_matches_the_timeline(world: Path, data: MemoryData) -> None:
    """The gold holds on the hidden timeline at ``asked_at``; for "am I still …" the evidence is the
    user's latest turn about the intent, and for ``changed`` ones (gold "no") an earlier turn stated
    it: that statement is not evidence."""
    eps = pd.read_parquet(world / "hidden" / "user_intents.parquet")
    names = {i.id: i.name.lower() for i in load_ontology().intents.values()}
    assert any(p.kind == "changed" and p.answers == ("no",) for p in data.probes)
    for p in data.probes:
        rows = eps[(eps["user"] == p.user) & (eps["intent"] == p.mentions[0])]
        at = pd.Timestamp(p.asked_at)
        live = bool(((rows["start"] <= at) & (at < rows["end"])).any())
        if p.answers in (("no",), ("yes",)):
            assert live == (p.answers == ("yes",)), p.qid
            turns = data.dialogue(p.user).turns()
            about = [tid for tid, _, t in turns if _names(t.query, p.mentions[0], names)]
            assert p.evidence == (about[-1],), p.qid
            assert p.kind == ("changed" if p.answers == ("no",) else "fact"), p.qid
            assert len(about) > 1 or p.kind == "fact", p.qid
        elif p.kind == "changed":  # "what is my … now": the one live intent of its group
            assert live and p.mentions[0] in names, p.qid
            assert _names(_turn(data, p.evidence[0]).query, p.mentions[0], names), p.qid
        elif p.mentions[0] in names:  # what the user told about a group
            assert p.answers == (load_ontology().intents[p.mentions[0]].name,)
            assert _names(_turn(data, p.evidence[0]).query, p.mentions[0], names), p.qid
        else:  # what the assistant suggested: categories the intent NEEDS
            assert all(m.startswith("cat_") for m in p.mentions), p.qid
            reply = _turn(data, p.evidence[0]).response.lower()
            assert all(a.lower() in reply for a in p.answers), p.qid


def test_world_paraphrase_groups(data: MemoryData) -> None:
    groups: dict[str, list[str]] = {}
    for p in data.probes:
        groups.setdefault(p.group, []).append(p.question)
    assert groups and all(2 <= len(q) <= 3 and len(set(q)) == len(q) for q in groups.values())
    for p in data.probes:
        same = [q for q in data.probes if q.group == p.group]
        gold = {(q.answers, q.evidence, q.kind, q.user, q.asked_at) for q in same}
        assert gold == {(p.answers, p.evidence, p.kind, p.user, p.asked_at)}


def test_world_config_is_validated(world: Path) -> None:
    with pytest.raises(InputError, match="paraphrases"):
        WorldDialogueConfig(paraphrases=1)
    with pytest.raises(InputError, match="sessions"):
        WorldDialogueConfig(sessions=1)
    with pytest.raises(InputError, match="users with intents"):
        generate_world_dialogues(world, WorldDialogueConfig(users=10**6))


def _turn(data: MemoryData, tid: str) -> Turn:
    user = tid.split("/", 1)[0]
    return next(t for i, _, t in data.dialogue(user).turns() if i == tid)


def _names(text: str, intent: str, names: dict[str, str]) -> bool:
    """``text`` names the intent (and not a longer intent name that contains it: "cycling to work")."""
    text, name = text.lower(), names[intent]
    longer = [n for n in names.values() if n != name and name in n and n in text]
    return name in text and not longer
