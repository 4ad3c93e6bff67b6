"""Post-thinking, forget/merge tests and the memory baselines on GVD turns (MemoryBank's English
dialogues, written inline) with the real spaCy pipeline, the shipped MiniLM and mem0."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.memory.baselines import Mem0Peer, RawHistory, WholeHistory
from consumers.memory.dialogue import Dialogue, Session, Turn
from consumers.memory.postthink import LLMPostThinker, SpacyPostThinker, contradicts, polarity, same_head
from consumers.memory.thought import Thought
from mining.llm.openai_http import OpenAIClient
from tests.support.openai_stub import OpenAIStub, Reply

DAY1 = Session(
    "Emily/2023-04-27",
    "2023-04-27",
    (
        Turn("Hello, my name is Emily. Nice to meet you.", "Hello, Emily. Can I assist you in any way?"),
        Turn(
            "I really enjoy painting, playing piano and tea tasting. Do you have any book recommendations?",
            "Certainly, there are many books about painting techniques that I can recommend to you.",
        ),
        Turn(
            'I prefer artistic works, like "The Great Gatsby" which is full of charm.',
            'Then I recommend "The Little Prince" and "Pride and Prejudice". Both are very interesting.',
        ),
    ),
)
DAY2 = Session(
    "Emily/2023-04-28",
    "2023-04-28",
    (
        Turn(
            "I went to Green Meadow Park and saw a particularly beautiful blooming cherry blossom!",
            "Awesome! Hearing you describe it makes me want to go for a walk in the park too!",
        ),
        Turn(
            'I also like sci-fi movies. If you like, you can go see "The Wandering Earth".',
            "It seems like you have a diverse taste in movies.",
        ),
        Turn("I don't like going to the gym anymore.", "That is fine, walking in the park is exercise too."),
    ),
)
EMILY = Dialogue("Emily", "Emily", (DAY1, DAY2))
JOHN = Dialogue("John Zhang", "John Zhang", (DAY2,))


def triples(session: Session, index: int) -> set[tuple[str, str, str]]:
    return {(t.head, t.relation, t.tail) for t in SpacyPostThinker().think("Emily", session, index)}


def thought(relation: str, tail: str, head: str = "Emily", user: str = "Emily") -> Thought:
    return Thought(user, head, relation, tail, session="s", at="2023-05-01", turns=("s#0",))


def test_first_person_becomes_the_user_with_coordinated_objects() -> None:
    found = triples(DAY1, 1)
    assert {
        ("Emily", "enjoys", "painting"),
        ("Emily", "enjoys", "playing piano"),
        ("Emily", "enjoys", "tea tasting"),
    } <= found
    assert any(r == "asked about" and "book recommendations" in t for _, r, t in found)


def test_quoted_titles_are_tails_and_the_assistants_recommendations_are_kept() -> None:
    found = triples(DAY1, 2)
    assert ("Emily", "prefers", '"The Great Gatsby"') in found
    assert ("Emily", "was recommended", '"The Little Prince"') in found
    assert ("Emily", "was recommended", '"Pride and Prejudice"') in found
    assert ("Emily", "recommended", '"The Wandering Earth"') in triples(DAY2, 1)


def test_places_tense_and_negation_stay_in_the_triple() -> None:
    assert ("Emily", "went to", "Green Meadow Park") in triples(DAY2, 0)
    assert triples(DAY2, 2) == {("Emily", "does not like", "going to the gym")}
    t = SpacyPostThinker().think("u1", DAY2, 2, who="Emily")[0]
    assert (t.user, t.session, t.at, t.turns, t.text) == (
        "u1",
        "Emily/2023-04-28",
        "2023-04-28",
        ("Emily/2023-04-28#2",),
        "Emily does not like going to the gym",
    )


def test_possessives_and_greetings() -> None:
    found = SpacyPostThinker().think("Emily", DAY1, 0)
    assert [t.text for t in found] == ["Emily's name is Emily"]
    parsed = SpacyPostThinker().triples("Okay, thank you. I no longer play piano.", "", "Emily")
    assert [(h, r, t) for h, r, t, _ in parsed] == [("Emily", "no longer plays", "piano")]


def test_contradicts_both_ways_and_not_otherwise() -> None:
    likes, dislikes = thought("likes", "going to the gym"), thought("does not like", "going to the gym")
    started, stopped = thought("started", "yoga classes"), thought("stopped", "yoga classes")
    plan, cancel = thought("is planning", "a trip to Japan"), thought("cancelled", "Emily's trip to Japan")
    for a, b in [(likes, dislikes), (started, stopped), (plan, cancel)]:
        assert contradicts(a, b) and contradicts(b, a)
    assert contradicts(thought("favorite color is", "blue"), thought("favorite color is", "red"))
    assert not contradicts(likes, thought("likes", "swimming"))  # another topic
    assert not contradicts(dislikes, thought("stopped", "going to the gym"))  # same polarity
    assert not contradicts(likes, thought("does not like", "going to the gym", user="Jason"))  # another user
    assert not contradicts(thought("saw", "a squirrel"), thought("saw", "a cherry blossom"))
    assert not contradicts(thought("lives in", "Beijing"), thought("lives in", "Beijing, China"))
    assert not contradicts(thought("friend is", "kind"), thought("friend is", "funny"))  # not single-valued
    assert contradicts(thought("used to live in", "Shanghai"), thought("lives in", "Shanghai"))
    assert (polarity("no longer plays"), polarity("enjoys")) == (-1, 1)


def test_parsed_thoughts_contradict_across_sessions() -> None:
    plan = Session("Emily/2023-05-02", "2023-05-02", (Turn("I'm planning a trip to New Zealand.", "Nice!"),))
    cancel = Session(
        "Emily/2023-05-09", "2023-05-09", (Turn("I cancelled my trip to New Zealand.", "Sorry."),)
    )
    thinker = SpacyPostThinker()
    (old,), (new,) = thinker.think("Emily", plan, 0), thinker.think("Emily", cancel, 0)
    assert (old.relation, new.relation, new.tail) == (
        "is planning",
        "cancelled",
        "Emily's trip to New Zealand",
    )
    assert contradicts(old, new) and contradicts(new, old)
    (again,) = thinker.think("Emily", plan, 0)
    assert again.id == old.id and not contradicts(old, again)


def test_same_head_ignores_case_and_articles() -> None:
    assert same_head(thought("likes", "tea", head="Emily"), thought("went to", "the park", head="emily"))
    assert same_head(thought("is", "red", head="The car"), thought("is", "fast", head="car"))
    assert not same_head(thought("likes", "tea"), thought("likes", "tea", head="Jason"))
    assert not same_head(thought("likes", "tea"), thought("likes", "tea", user="Jason"))


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    server = OpenAIStub().start()
    yield server
    server.stop()


def test_llm_thinker_parses_json_and_lines_and_counts_the_bad(stub: OpenAIStub) -> None:
    answer = {
        "thoughts": [
            {"head": "user", "relation": "went to", "tail": "Green Meadow Park"},
            {"head": "Emily", "relation": "saw"},
            {"head": "Emily", "relation": "", "tail": "nothing"},
        ]
    }
    stub.script(
        Reply(content="```json\n" + json.dumps(answer) + "\n```"),
        Reply(content="Emily | likes | sci-fi movies\nbad line | x"),
    )
    thinker = LLMPostThinker(OpenAIClient(stub.url, "stub-model", timeout_s=2.0, backoff_s=0.01))
    first = thinker.think("u1", DAY2, 0, who="Emily")
    assert [t.text for t in first] == ["Emily went to Green Meadow Park"]
    assert first[0].turns == ("Emily/2023-04-28#0",)
    assert [t.text for t in thinker.think("u1", DAY2, 1, who="Emily")] == ["Emily likes sci-fi movies"]
    assert thinker.malformed == 3
    assert stub.bodies[0]["response_format"]["type"] == "json_schema"
    assert "Green Meadow Park" in stub.bodies[0]["messages"][1]["content"]


@pytest.fixture(scope="module")
def encoder() -> object:
    from loaders.features import MiniLMEncoder

    return MiniLMEncoder()


def test_raw_history_finds_the_obvious_turn(encoder: object, one_torch_thread: None) -> None:
    raw = RawHistory.build(EMILY, encoder)  # type: ignore[arg-type]
    hits = raw.recall("Which park did I go to?", k=2)
    assert hits[0][0] == "Emily/2023-04-28#0" and hits[0][2] == ("Emily/2023-04-28#0",)
    assert hits[0][1] >= hits[1][1]
    assert raw.recall("What science fiction movie did I recommend?", k=1)[0][0] == "Emily/2023-04-28#1"


def test_whole_history_keeps_the_newest_turns_that_fit() -> None:
    whole = WholeHistory.build(EMILY, max_tokens=60)
    text, ids = whole.context()
    assert ids and ids[-1] == "Emily/2023-04-28#2" and "Emily/2023-04-27#0" not in ids
    assert text.index("gym") > text.index("[2023-04-28]")
    assert [h[0] for h in whole.recall("anything", k=1)] == list(reversed(ids))
    assert len(WholeHistory.build(EMILY, max_tokens=10_000).context()[1]) == 6


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
@pytest.mark.skipif(importlib.util.find_spec("mem0") is None, reason="mem0ai is not installed (dev extra)")
def test_mem0_round_trip_offline(tmp_path: Path, one_torch_thread: None) -> None:
    peer = Mem0Peer.build(EMILY, folder=tmp_path)
    hits = peer.recall("Which park did I go to?", k=3)
    assert hits[0][2] == ("Emily/2023-04-28#0",)
    assert len({h[2] for h in hits}) == len(hits) == 3
    assert peer.recall("What science fiction movie did I recommend?", k=1)[0][2] == ("Emily/2023-04-28#1",)
    john = Mem0Peer.build(JOHN, folder=tmp_path)  # a name with a space: mem0 refuses those ids
    assert john.recall("Which park did I go to?", k=1)[0][2] == ("Emily/2023-04-28#0",)
    assert len(john.recall("Which park did I go to?", k=10)) == 3  # only John's turns
    Mem0Peer.build(JOHN, folder=tmp_path / "again")
    rebuilt = Mem0Peer.build(JOHN, folder=tmp_path / "again")  # starts empty, not added to
    assert len(rebuilt.recall("park", k=10)) == 3


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
@pytest.mark.skipif(importlib.util.find_spec("mem0") is None, reason="mem0ai is not installed (dev extra)")
def test_mem0_infers_facts_through_an_endpoint(
    stub: OpenAIStub, tmp_path: Path, one_torch_thread: None
) -> None:
    facts = ["John went to Green Meadow Park", "John likes sci-fi movies", "John does not like the gym"]
    stub.script(*(Reply(content=json.dumps({"memory": [{"text": f}]})) for f in facts))
    peer = Mem0Peer.build(JOHN, folder=tmp_path, endpoint=stub.url, model="stub-model")
    assert stub.count == 3 and stub.bodies[0]["model"] == "stub-model"
    assert "Green Meadow Park" in json.dumps(stub.bodies[0]["messages"])
    (hit,) = peer.recall("Which park did John go to?", k=1)
    assert hit[2] == ("Emily/2023-04-28#0",)
    assert peer.memory.get(hit[0])["memory"] == facts[0]
