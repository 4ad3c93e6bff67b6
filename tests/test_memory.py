"""TiM's memory in the graph (issue 18): insert, forget, merge as store writes in runs, undone by
deleting the run; recall excludes what was forgotten; a user's memory deleted on request leaves
nothing in the store or the index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.memory.config import MemoryConfig
from consumers.memory.dialogue import Session, Turn
from consumers.memory.memory import Changes, TiMMemory, merge
from consumers.memory.postthink import SpacyPostThinker
from consumers.memory.store import read_thoughts
from consumers.memory.thought import MERGED, RETIRED, Thought
from graph.store import GraphStore, StoreConfig, open_store
from loaders.features import MiniLMEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GraphStore]:
    s = open_store(StoreConfig(backend="embedded", path=tmp_path / "g"), create=True)
    with s.run_context("setup") as run_id:
        s.upsert_nodes("User", [{"id": "ann", "name": "Ann"}], run_id=run_id)
    yield s
    s.close()


def session(sid: str, at: str, *queries: str) -> Session:
    return Session(sid, at, tuple(Turn(q, "I see.") for q in queries))


def quit_tennis(mem: TiMMemory) -> Changes:
    """Ann plays tennis (session 1), then stops (session 2): the second session's changes."""
    mem.observe("ann", session("ann/1", "2026-01-01", "I play tennis every week."), who="Ann")
    return mem.observe("ann", session("ann/2", "2026-02-01", "I stopped playing tennis."), who="Ann")


def memory(store: GraphStore, encoder: MiniLMEncoder, merge_min: int = 3, merge_max: int = 4) -> TiMMemory:
    from consumers.memory.link import Linker

    config = MemoryConfig(index="exact", merge_min=merge_min, merge_max=merge_max)
    return TiMMemory(store, encoder, SpacyPostThinker(), config, Linker.from_store(store))


def test_insert_writes_thoughts_with_vectors_provenance_and_mentions(
    store: GraphStore, encoder: MiniLMEncoder
) -> None:
    mem = memory(store, encoder)
    changes = mem.observe("ann", session("ann/1", "2026-01-01", "I love jogging in the park."), who="Ann")
    assert changes.inserted and changes.run_id
    stored = read_thoughts(store, "ann")
    assert any("jogging" in t.text for t in stored.thoughts)
    assert stored.vectors.shape == (len(stored.thoughts), 384)
    assert all(t.turns == ("ann/1#0",) and t.at == "2026-01-01" for t in stored.thoughts)
    edges = store.edge_table(("Thought", "MENTIONS", "User"))
    assert set(edges["tail"]) == {"ann"}
    again = mem.observe("ann", session("ann/1", "2026-01-01", "I love jogging in the park."), who="Ann")
    assert again.inserted == []  # the same sentence is the same thought: no second node
    assert len(read_thoughts(store, "ann").thoughts) == len(stored.thoughts)


def test_a_contradicted_thought_is_retired_not_recalled_and_deleting_the_run_restores_it(
    store: GraphStore, encoder: MiniLMEncoder
) -> None:
    mem = memory(store, encoder)
    later = quit_tennis(mem)
    assert [t.text for t in later.retired] == ["Ann plays tennis"]
    old = later.retired[0]
    stored = {t.id: t for t in read_thoughts(store, "ann").thoughts}
    assert (
        stored[old.id].status == RETIRED
        and stored[old.id].retired_by
        and stored[old.id].retired_at == "2026-02-01"
    )
    recalled = [t.id for t, _ in mem.recall("ann", "Does Ann play tennis?", 10)]
    assert old.id not in recalled and recalled  # the newer thought answers instead
    store.delete_run(later.run_id)  # undo the whole session: the forget and the new thought
    fresh = memory(store, encoder)
    back = {t.id: t for t in read_thoughts(store, "ann").thoughts}
    assert back[old.id].status == "active" and back[old.id].retired_by == ""
    assert old.id in [t.id for t, _ in fresh.recall("ann", "Does Ann play tennis?", 10)]


def test_merge_rewrites_thoughts_sharing_head_and_relation_into_one(
    store: GraphStore, encoder: MiniLMEncoder
) -> None:
    mem = memory(store, encoder, merge_min=3, merge_max=4)
    changes = mem.observe(
        "ann",
        session("ann/1", "2026-01-01", "I enjoy painting.", "I enjoy the piano.", "I enjoy tea tasting."),
        who="Ann",
    )
    assert len(changes.merged) == 3 and all(t.status == MERGED for t in changes.merged)
    merged = [t for t in mem.thoughts("ann") if len(t.turns) == 3]
    assert len(merged) == 1 and merged[0].text == "Ann enjoys painting, the piano and tea tasting"
    stored = {t.id: t for t in read_thoughts(store, "ann").thoughts}
    assert {stored[t.id].retired_by for t in changes.merged} == {merged[0].id}


def test_merge_of_thoughts_lists_tails_in_time_order_and_unites_provenance() -> None:
    a = Thought("u", "Ann", "likes", "tea", "s1", "2026-01-02", ("s1#0",), mentions=("User:u",))
    b = Thought("u", "Ann", "likes", "coffee", "s1", "2026-01-01", ("s1#1",))
    c = Thought("u", "Ann", "likes", "tea", "s2", "2026-01-03", ("s2#0",))
    m = merge([a, b, c])
    assert (m.tail, m.at, m.turns, m.mentions) == (
        "coffee and tea",
        "2026-01-03",
        ("s1#1", "s1#0", "s2#0"),
        ("User:u",),
    )


def test_forgetting_a_user_removes_thoughts_edges_before_images_and_index_entries(
    store: GraphStore, encoder: MiniLMEncoder
) -> None:
    mem = memory(store, encoder)
    quit_tennis(mem)
    edge = store.edge_table(("Thought", "MENTIONS", "User")).iloc[0]
    with store.run_context("relink") as run_id:  # a later run changes an edge: its before-image is kept
        store.upsert_edges(
            "MENTIONS",
            [{"head": edge["head"], "tail": "ann", "confidence": 0.5}],
            run_id=run_id,
            head="Thought",
            tail="User",
        )
    changes = store.node_table("Change", ["target", "key"])
    assert (changes["target"] == "Thought").any()  # the forget kept a before-image
    assert (changes["target"] == "Thought-MENTIONS-User").any()
    assert mem.recall("ann", "tennis", 5)
    removed = mem.forget_user("ann")
    assert removed >= 2
    assert read_thoughts(store, "ann").thoughts == []
    assert store.edge_table(("Thought", "MENTIONS", "User")).empty
    left = store.node_table("Change", ["target", "key", "before"])
    assert not left["target"].str.startswith("Thought").any()
    assert not any("tennis" in str(b) for b in left["before"])
    assert mem.recall("ann", "tennis", 5) == []
    assert mem.forget_user("ann") == 0  # idempotent


def test_the_thought_row_round_trips() -> None:
    t = Thought("u", "Ann", "went to", "Green Meadow Park", "s", "2026-01-01", ("s#0", "s#2"))
    row = t.row()
    assert json.loads(row["turns"]) == ["s#0", "s#2"]
    assert Thought.from_row(row) == t


def test_scoring_counts_evidence_turns_alternatives_and_content_words() -> None:
    from consumers.memory.dialogue import Probe
    from consumers.memory.evaluate import MethodResult, is_correct, recall, score_probe

    probe = Probe(
        "u",
        "q1",
        "What park?",
        ("Green Meadow Park",),
        ("s#1", "s#2"),
        alt_evidence=(("s#5", "s#1"),),
        group="g",
    )
    items = [("t1", 0.9, ("s#5",), "Ann went to Green Meadow Park"), ("t2", 0.5, ("s#2", "s#3"), "x")]
    result = score_probe(probe, items, "Ann went to Green Meadow Park")
    assert [recall(result, 1), recall(result, 2)] == [0.5, 1.0]  # s#5 counts as the s#1 it repeats
    assert result.correct is True and result.top == "t1"
    assert is_correct("the park", ["Green Meadow Park"]) is False  # 1 of 3 content words
    assert is_correct("a meadow park", ["Green Meadow Park"]) is True
    assert (
        is_correct("No more tennis for me", ["no"], extractive=True) is None
    )  # offline replies cannot say no
    assert is_correct("No, you stopped.", ["no"]) is True
    twin = score_probe(Probe("u", "q2", "Which park?", ("x",), ("s#1",), group="g"), items[1:], "x")
    assert MethodResult("d", "m", [result, twin]).consistency() == (0.0, 1.0)


def test_a_thought_said_again_is_one_thought_with_both_sources(
    store: GraphStore, encoder: MiniLMEncoder
) -> None:
    mem = memory(store, encoder)
    mem.observe("ann", session("ann/1", "2026-01-01", "I love green tea."), who="Ann")
    again = mem.observe("ann", session("ann/2", "2026-03-01", "I love green tea."), who="Ann")
    assert again.inserted == [] and len(again.restated) == 1
    (tea,) = [t for t in read_thoughts(store, "ann").thoughts if "green tea" in t.text]
    assert tea.turns == ("ann/1#0", "ann/2#0") and tea.at == "2026-03-01"


def test_with_a_past_weight_a_retired_thought_is_recalled_below_its_cosine(
    store: GraphStore, encoder: MiniLMEncoder
) -> None:
    mem = memory(store, encoder)
    later = quit_tennis(mem)
    old = later.retired[0]
    past = TiMMemory(store, encoder, SpacyPostThinker(), MemoryConfig(index="exact", past_weight=0.5))
    hits = {t.id: s for t, s in past.recall("ann", old.text, 10)}
    assert old.id in hits and old.id not in {t.id for t, _ in mem.recall("ann", old.text, 10)}
    assert hits[old.id] == pytest.approx(0.5, abs=0.01)  # the same sentence: cosine 1, scaled


def test_an_lsh_memory_is_rehashed_into_more_buckets_as_it_grows(
    store: GraphStore, encoder: MiniLMEncoder
) -> None:
    from consumers.memory.lsh import LSHIndex

    mem = TiMMemory(store, encoder, SpacyPostThinker(), MemoryConfig(merge=False, fill=True))
    mem.observe("ann", session("ann/1", "2026-01-01", "I visited Paris."), who="Ann")
    assert isinstance(mem._index["ann"], LSHIndex) and mem._index["ann"].buckets == 2
    cities = [f"I visited town number {i}." for i in range(300)]
    mem.observe("ann", session("ann/2", "2026-02-01", *cities, "I visited Paris."), who="Ann")
    index = mem._index["ann"]
    assert (
        isinstance(index, LSHIndex) and index.buckets >= 4 and len(index) == len(mem.thoughts("ann")) >= 300
    )
    (paris,) = [t for t in mem.thoughts("ann") if "Paris" in t.text]
    assert paris.turns == ("ann/1#0", "ann/2#300")  # said again after the re-hash: provenance kept in memory
    assert paris.id in [t.id for t, _ in mem.recall("ann", "Did Ann visit Paris?", 5)]
