"""Multi-session dialogues generated from the world's hidden timelines, with probes whose gold is known.

TiM ("Think-in-Memory: Recalling and Post-thinking Enable LLMs with Long-Term Memory", Liu et al.,
arXiv 2311.08719) is evaluated on conversations where facts are stated once and asked about much
later, some of which change (what its *forget* must handle), and on whether the same question in
different words gets the same answer (consistency, §4). The seeded world knows every user's intent
episodes (``hidden/user_intents.parquet``: ``user, intent, start, end``), so conversations about
them come with exact gold answers.

For a seeded sample of users (:class:`WorldDialogueConfig`), per user:

1. Episodes: the user's intent episodes that start before the world's end ``T_end = start +
   span_days + horizon_days``; an intent the user has more than once is dropped (its state would
   be ambiguous). Events: every start, every end ``≤ T_end``.
2. Sessions at ``S`` dates, each 1–4 days after a sampled event (padded with random dates when the
   user has fewer events), one per day. In session ``k`` (time ``d_k``, previous ``d_{k−1}``) the
   user says what changed since ``d_{k−1}``: an episode that started (and is still live) is
   *started* ("We're expecting a baby …"), one that started and ended in between is told in the past,
   a told live episode that ended is *ended* ("I stopped going to the gym"), a told live one that
   goes on is *continued* (with probability ``continue_prob``); ``smalltalk`` fact-free turns are
   mixed in. The assistant's replies name 1–2 leaf categories the intent NEEDS (``Ontology.needs``).
3. Probes at ``asked_at`` = the day after the last session, each checked against the timeline at
   ``asked_at``: ``fact`` — what the user said about a group (only where the user told exactly one
   episode of that group: "What trip was I planning?"), what the assistant suggested for an intent,
   "am I still …" where the answer is yes; ``changed`` — "am I still …" for a told episode that
   later ended (gold ``no``; evidence is the turn saying it ended, *not* the earlier statement) and
   "what is my … now" where a later episode of the same group replaced an ended one. Every probe is
   asked in ``paraphrases`` wordings that share a ``group``.

Gold ``answers`` are intent display names, category names or ``yes``/``no``; ``mentions`` are the
KG ids they name (``int_*``, ``cat_*``); evidence is the one turn that states the answer: the
first statement for what was told or suggested, the latest for "am I still …". Users are a prefix
of one seeded permutation and each user's text is drawn from a generator seeded by (seed, user), so
a larger sample keeps a smaller one's dialogues and probes unchanged.

Honesty limits: the text is filled templates, not natural conversation. Intent and category names
are the ontology's display names pasted into slots, so some sentences read stiffly ("we're in the
middle of wedding anniversary now", "No more starting to invest for me"); a change is told as an
end and a separate start, never as one "I switched from … to …" turn; users have no names (the
dialogue's ``name`` is the user id). Several phrasings per template (a seeded choice) keep questions
from sharing the answer's words, but a keyword matcher still finds the intent name in "am I still"
probes (which is the point: it must pick the latest turn). The assistant's replies are canned and
never wrong. Ground truth comes from the hidden timeline only; nothing here is a model's output,
and no model input should be built from it (it reads ``hidden/``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from consumers.memory.dialogue import Dialogue, MemoryData, Probe, Session, Turn
from consumers.memory.thought import turn_id
from graph.errors import InputError
from loaders.world.layout import WorldDir
from loaders.world.ontology import Ontology, load_ontology

STARTED = {
    "life_event": (
        "Big news: {name} is happening for us. What should I get?",
        "Things are changing at home, we're in the middle of {name} now. Any advice?",
        "I wanted to share something personal: {name}. Where do I even start?",
    ),
    "hobby": (
        "I've recently got into {name}. What do I need?",
        "I picked up a new pastime, {name}. Any tips on gear?",
        "Guess what I've started doing in my spare time: {name}!",
    ),
    "travel": (
        "I'm planning some travel: {name}. What should I pack?",
        "It's booked! {Name} is coming up soon.",
        "Coming up for me: {name}. What should I sort out before I go?",
    ),
    "health": (
        "I've been dealing with {name} lately. What helps?",
        "Health update: {name} is my focus now.",
        "I could use some advice, {name} has started for me.",
    ),
    "household": (
        "At home we've started on {name}. What will we need?",
        "Our weekends are all about {name} now.",
        "I'm tackling {name} around the house at the moment.",
    ),
    "seasonal": (
        "It's that time again: {name}. Any ideas?",
        "I'm starting on {name} early this year.",
        "{Name} is on my to-do list now. Where do I begin?",
    ),
    "financial": (
        "I've decided to get going with {name}. Where should I begin?",
        "Money-wise, my focus now is {name}.",
        "I'm working on {name} these days. Any pointers?",
    ),
    "work_study": (
        "A new chapter for me: {name}. What will I need?",
        "Most of my time goes into {name} now.",
        "Work and study update: I've started on {name}.",
    ),
}
ENDED = (
    "{Name} is behind me now, that's done.",
    "Quick update: I'm finished with {name}.",
    "No more {name} for me, it's all wrapped up.",
)
ENDED_HOBBY = ("I stopped {name}, I lost interest.", "I've given up {name}.", "I don't do {name} any more.")
CONTINUED = (
    "Still busy with {name}, by the way.",
    "{Name} is still going on for me.",
    "Another week of {name}!",
    "An update: {name} carries on.",
)
PAST = (
    "Since we last talked I went through {name}, and it's already over.",
    "I had a short spell of {name} recently; it's finished now.",
    "Looking back, {name} came and went since our last chat.",
)
OPENERS = ("Thanks for telling me.", "Good to know.", "I'll keep that in mind.", "That's quite something.")
SUGGEST = (
    "For {name}, people often look at {cats}.",
    "You might want to check out {cats}.",
    "Worth a look: {cats}.",
)
ENDED_REPLY = (
    "Thanks for the update, I'll remember that it's over.",
    "Understood, that chapter is closed.",
    "Good to know, glad it's wrapped up.",
)
CONTINUED_REPLY = (
    "Glad to hear it. {Cats} may still come in handy.",
    "Sounds like it keeps you busy. Have you looked at {cats}?",
    "Nice. If you need anything, think about {cats}.",
)
PAST_REPLY = (
    "Thanks for filling me in.",
    "It sounds like a lot happened since we last spoke.",
    "Noted, thanks.",
)
SMALLTALK = (
    ("The weather has been grey all week.", "Grey weeks can be draining; I hope the sun comes out soon."),
    (
        "I watched a documentary about octopuses last night.",
        "Octopuses are fascinating, they can solve puzzles.",
    ),
    ("My neighbour's dog kept barking this morning.", "That sounds annoying; hopefully it settles down."),
    ("Do you know any good podcasts?", "Plenty. What topics do you enjoy?"),
    ("Traffic was terrible on the way home.", "Sorry to hear that, long commutes are tiring."),
    ("I finally finished that crossword.", "Well done! Those can take ages."),
    ("I had pancakes for breakfast.", "Sounds like a nice start to the day."),
    ("I bumped into an old friend at the shop.", "What a nice surprise!"),
    ("A colleague of mine just took up a new hobby.", "It's nice when people try new things."),
    (
        "My sister is planning a trip somewhere warm, lucky her.",
        "Sounds lovely, I hope she has a great time.",
    ),
    ("My friend keeps talking about money and budgets.", "It's a popular topic these days."),
    ("Is it normal to feel tired on Mondays?", "Very common. A calm Sunday evening can help."),
)
NOUNS = {
    "life_event": "big life event",
    "hobby": "hobby",
    "travel": "trip",
    "health": "health focus",
    "household": "household project",
    "seasonal": "seasonal plan",
    "financial": "money goal",
    "work_study": "work or study focus",
}
QUESTIONS = {
    "group:life_event": (
        "What big change in my life did I tell you about?",
        "Which life event did I mention to you?",
        "Remind me, what was the big news I shared with you?",
    ),
    "group:hobby": (
        "What hobby did I tell you I'd taken up?",
        "Which pastime did I mention getting into?",
        "What did I say I'd started doing in my free time?",
    ),
    "group:travel": (
        "What trip did I tell you I was planning?",
        "Which kind of travel did I mention?",
        "What sort of journey did I say was coming up for me?",
    ),
    "group:health": (
        "What health matter did I tell you about?",
        "Which health issue did I bring up with you?",
        "What was going on with my health, from what I told you?",
    ),
    "group:household": (
        "What was I sorting out at home, as I told you?",
        "Which household project did I mention?",
        "What did I say was keeping me busy around the house?",
    ),
    "group:seasonal": (
        "What seasonal plans did I tell you about?",
        "Which time-of-year occasion did I mention preparing for?",
        "What festive or seasonal thing was I getting ready for?",
    ),
    "group:financial": (
        "What money matter did I tell you I was working on?",
        "Which financial goal did I mention?",
        "What was I trying to sort out with my finances?",
    ),
    "group:work_study": (
        "What was I busy with for work or study?",
        "Which work or study project did I tell you about?",
        "What did I say was taking up my time at work or school?",
    ),
    "now": (
        "What is my {noun} these days?",
        "Right now, what would you say my {noun} is?",
        "Going by our latest chats, what's my current {noun}?",
    ),
    "still": (
        "Am I still busy with {name}?",
        "Is {name} still going on for me?",
        "Would you say {name} is still part of my life right now?",
    ),
    "suggested": (
        "When I brought up {name}, what did you suggest I look into?",
        "What did you recommend to me for {name}?",
        "Which things did you point me to for {name}?",
    ),
}


@dataclass(frozen=True)
class WorldDialogueConfig:
    """``users`` sampled (seeded) among users with episodes; ``sessions`` per user (at most: one per
    day); ``smalltalk`` fact-free turns per session; ``paraphrases`` wordings per question (2–3);
    ``max_questions`` question groups per user (``changed`` ones kept first); ``continue_prob`` of
    mentioning a told, still live episode in a session."""

    users: int = 50
    sessions: int = 6
    seed: int = 0
    smalltalk: int = 2
    paraphrases: int = 3
    max_questions: int = 8
    continue_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.users < 1 or self.sessions < 2:
            raise InputError("world dialogues need users >= 1 and sessions >= 2 per user")
        if not 2 <= self.paraphrases <= 3:
            raise InputError(f"paraphrases must be 2 or 3 (got {self.paraphrases})")
        if self.smalltalk < 0 or self.max_questions < 1:
            raise InputError("smalltalk must be >= 0 and max_questions >= 1")
        if not 0.0 <= self.continue_prob <= 1.0:
            raise InputError(f"continue_prob must be in [0, 1] (got {self.continue_prob})")


@dataclass
class _Episode:
    intent: str
    name: str
    group: str
    start: pd.Timestamp
    end: pd.Timestamp
    said: list[tuple[str, str]] = field(default_factory=list)  # (event, turn id), in time order
    suggested: tuple[str, ...] = ()  # category ids the assistant named when it was first told

    def live(self, t: pd.Timestamp) -> bool:
        return bool(self.start <= t < self.end)

    def told_live(self) -> bool:
        return bool(self.said) and self.said[-1][0] in ("started", "continued")


@dataclass(frozen=True)
class _Question:
    kind: str
    key: str  # of QUESTIONS
    answers: tuple[str, ...]
    mentions: tuple[str, ...]
    evidence: str
    slots: tuple[tuple[str, str], ...] = ()


def generate_world_dialogues(world_dir: Path, config: WorldDialogueConfig) -> MemoryData:
    """Dialogues and probes (``MemoryData`` named ``world``) for a seeded sample of the world's users."""
    wd = WorldDir(Path(world_dir))
    world = wd.manifest()["config"]
    t_end = pd.Timestamp(world["start"]) + pd.Timedelta(days=world["span_days"] + world["horizon_days"])
    path = wd.hidden_for_evaluation("user_intents.parquet")
    if not path.exists():
        raise InputError(f"{path} is missing; regenerate the world with `mokg world generate`")
    eps = pd.read_parquet(path, columns=["user", "intent", "start", "end"])
    eps = eps[eps["start"] < t_end].astype({"user": str, "intent": str})
    eps = eps[~eps.duplicated(["user", "intent"], keep=False)]
    users = sorted(eps["user"].unique())
    if config.users > len(users):
        raise InputError(f"the world has {len(users)} users with intents; ask for at most that many")
    chosen = sorted(np.random.default_rng(config.seed).permutation(users)[: config.users].tolist())
    onto = load_ontology()
    by_user = {str(u): g.sort_values(["start", "intent"]) for u, g in eps.groupby("user", sort=False)}
    dialogues, probes = [], []
    for user in chosen:
        rng = np.random.default_rng([config.seed, zlib.crc32(user.encode())])
        g = by_user[user]
        episodes = [
            _episode(onto, str(i), pd.Timestamp(s), pd.Timestamp(e))
            for i, s, e in zip(g["intent"], g["start"], g["end"], strict=True)
        ]
        dialogue = _converse(
            user, episodes, _session_times(episodes, t_end, config.sessions, rng), config, onto, rng
        )
        asked = pd.Timestamp(dialogue.sessions[-1].at) + pd.Timedelta(days=1)
        dialogues.append(dialogue)
        probes += _probes(user, episodes, asked, config, onto, rng)
    return MemoryData(name="world", dialogues=tuple(dialogues), probes=tuple(probes))


def _episode(onto: Ontology, intent: str, start: pd.Timestamp, end: pd.Timestamp) -> _Episode:
    it = onto.intents.get(intent)
    if it is None:
        raise InputError(
            f"intent {intent!r} of the world is not in the shipped ontology; regenerate the world"
        )
    return _Episode(intent=it.id, name=it.name, group=it.group, start=start, end=end)


def _session_times(
    episodes: list[_Episode], t_end: pd.Timestamp, n: int, rng: np.random.Generator
) -> list[pd.Timestamp]:
    """Up to ``n`` session times (20:00, one per day): 1–4 days after sampled events, padded with
    random times when there are fewer events than sessions."""
    events = sorted({e.start for e in episodes} | {e.end for e in episodes if e.end <= t_end})
    picks = sorted(rng.choice(len(events), size=min(n, len(events)), replace=False).tolist())
    times = [events[i] + pd.Timedelta(hours=float(rng.uniform(24, 96))) for i in picks]
    lo, hi = events[0], max(events[-1], events[0] + pd.Timedelta(days=30))
    times += [lo + (hi - lo) * float(rng.uniform(0.05, 1.0)) for _ in range(n - len(times))]
    return sorted({t.normalize() + pd.Timedelta(hours=20) for t in times})


def _converse(
    user: str,
    episodes: list[_Episode],
    times: list[pd.Timestamp],
    config: WorldDialogueConfig,
    onto: Ontology,
    rng: np.random.Generator,
) -> Dialogue:
    sessions, prev = [], pd.Timestamp.min
    chat = rng.permutation(len(SMALLTALK)).tolist()  # small talk without repeats until it runs out
    for now in times:
        sid = f"{user}/{now.date().isoformat()}"
        lines: list[tuple[Turn, _Episode | None, str, tuple[str, ...]]] = []
        for e in episodes:
            event = ""
            if prev < e.start <= now:
                event = "started" if e.live(now) else "past"
            elif e.told_live() and e.end <= now:
                event = "ended"
            elif e.told_live() and rng.random() < config.continue_prob:
                event = "continued"
            if event:
                cats = _categories(onto, e.intent, rng)
                lines.append((_say(event, e, [onto.categories[c].name for c in cats], rng), e, event, cats))
        for _ in range(config.smalltalk):
            lines.append((Turn(*SMALLTALK[chat[0]]), None, "", ()))
            chat = chat[1:] if len(chat) > 1 else rng.permutation(len(SMALLTALK)).tolist()
        turns = []
        for k, i in enumerate(rng.permutation(len(lines))):
            turn, e, event, cats = lines[i]
            turns.append(turn)
            if e is not None:
                e.suggested = cats if event == "started" else e.suggested
                e.said.append((event, turn_id(sid, k)))
        sessions.append(Session(id=sid, at=now.date().isoformat(), turns=tuple(turns)))
        prev = now
    return Dialogue(user=user, name=user, sessions=tuple(sessions))


def _categories(onto: Ontology, intent: str, rng: np.random.Generator) -> tuple[str, ...]:
    """1–2 leaf categories the intent NEEDS most (a seeded pick of its top 4)."""
    needs = sorted(onto.needs(intent).items(), key=lambda kv: (-kv[1], kv[0]))[:4]
    picks = rng.choice(len(needs), size=min(len(needs), int(rng.integers(1, 3))), replace=False)
    return tuple(needs[i][0] for i in sorted(picks.tolist()))


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _fill(template: str, **slots: str) -> str:
    caps = {k.capitalize(): v[:1].upper() + v[1:] for k, v in slots.items()}
    return template.format(**slots, **caps)


def _say(event: str, e: _Episode, cats: list[str], rng: np.random.Generator) -> Turn:
    """The user's turn telling ``event`` of episode ``e``, and the assistant's canned reply."""
    joined = ", plus ".join(_lower_first(c) for c in cats)
    if event == "started":
        query, reply = _pick(STARTED[e.group], rng), f"{_pick(OPENERS, rng)} {_pick(SUGGEST, rng)}"
    elif event == "continued":
        query, reply = _pick(CONTINUED, rng), _pick(CONTINUED_REPLY, rng)
    elif event == "ended":
        query, reply = _pick(ENDED_HOBBY if e.group == "hobby" else ENDED, rng), _pick(ENDED_REPLY, rng)
    else:
        query, reply = _pick(PAST, rng), _pick(PAST_REPLY, rng)
    return Turn(_fill(query, name=e.name), _fill(reply, name=e.name, cats=joined))


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:] if name[1:2].islower() else name


def _probes(
    user: str,
    episodes: list[_Episode],
    asked: pd.Timestamp,
    config: WorldDialogueConfig,
    onto: Ontology,
    rng: np.random.Generator,
) -> list[Probe]:
    qs = _questions([e for e in episodes if e.said], episodes, asked, onto)
    order = [i for i in rng.permutation(len(qs)).tolist() if qs[i].kind == "changed"]
    order += [i for i in rng.permutation(len(qs)).tolist() if qs[i].kind != "changed"]
    out = []
    for n, i in enumerate(sorted(order[: config.max_questions])):
        q = qs[i]
        options = QUESTIONS[q.key.split(":")[0] if q.key.startswith("now:") else q.key]
        picks = rng.choice(len(options), size=config.paraphrases, replace=False).tolist()
        for v, j in enumerate(picks):
            out.append(
                Probe(
                    user=user,
                    qid=f"{user}-{n}.{v}",
                    question=_fill(options[j], **dict(q.slots)),
                    answers=q.answers,
                    evidence=(q.evidence,),
                    group=f"{user}-{n}",
                    kind=q.kind,
                    asked_at=asked.date().isoformat(),
                    mentions=q.mentions,
                )
            )
    return out


def _questions(
    told: list[_Episode], episodes: list[_Episode], asked: pd.Timestamp, onto: Ontology
) -> list[_Question]:
    """Every question the user's told episodes support whose gold holds on the timeline at ``asked``."""
    qs = []
    for group in sorted({e.group for e in told}):
        members = [e for e in told if e.group == group]
        if len(members) == 1:
            e = members[0]
            qs.append(_Question("fact", f"group:{group}", (e.name,), (e.intent,), e.said[0][1]))
        live = [e for e in episodes if e.group == group and e.live(asked)]
        old = [e for e in members if e.said[0][0] == "started" and e.said[-1][0] == "ended"]
        if len(live) == 1 and live[0].told_live() and any(o.start < live[0].start for o in old):
            e = live[0]
            slots = (("noun", NOUNS[group]),)
            qs.append(_Question("changed", f"now:{group}", (e.name,), (e.intent,), e.said[0][1], slots))
    for e in told:
        slots = (("name", e.name),)
        if e.said[-1][0] == "ended" and len(e.said) > 1 and not e.live(asked):
            qs.append(_Question("changed", "still", ("no",), (e.intent,), e.said[-1][1], slots))
        elif e.told_live() and e.live(asked):
            qs.append(_Question("fact", "still", ("yes",), (e.intent,), e.said[-1][1], slots))
        if e.suggested:
            names = tuple(_lower_first(onto.categories[c].name) for c in e.suggested)
            qs.append(_Question("fact", "suggested", names, e.suggested, e.said[0][1], slots))
    return qs
