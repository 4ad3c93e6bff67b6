"""The teacher's noise model: how its answers differ from the ground truth, each effect with its own rate.

The teacher (the strong teacher LLM of PAIR: Gan et al., "Making Large Language Models Better
Knowledge Miners for Online Marketing with Progressive Prompting Augmentation", arXiv 2312.05276)
starts from the true answer and corrupts it. Every rate is a probability in [0, 1]; all zero (the
default) gives the exact truth.

- ``omission``: each true tail (or true fact in free generation) is left out independently with
  this probability. Expected recall of one answer = 1 − omission.
- ``hallucination``: each true tail independently spawns one wrong tail with this probability
  (k ~ Binomial(n_true, rate), so E[k] = rate · n_true); when that gives none, one is still added
  with probability ``rate`` (so relations with no true tail also attract guesses). A wrong tail is
  a near miss of a true tail (sibling or cousin category, intent of the same group, see
  ``knowledge.py``) that is not itself true, drawn uniformly from the first max(8, 2·n_true)
  near misses (all siblings before any cousin); it is placed at a random rank in the answer,
  and the answer is then cut to the ``k`` the prompt asks for.
- ``relation_confusion``: in relation filtering each relation of the head type's menu flips
  independently (a true one is dropped, a wrong one added) with this probability; in free
  generation each fact's relation phrase is taken from another relation with this probability.
- ``format_error``: the whole answer is malformed with this probability, one kind chosen
  uniformly: ``truncated`` (JSON cut off inside), ``prose`` (the JSON wrapped in chat sentences),
  ``wrong_keys`` (valid JSON, top-level keys renamed). ``mining.prompts.parse_answer`` rejects all
  three.
- ``inconsistency``: each sample re-draws on top of the shared answer: every kept item is
  dropped with this probability, every omitted true tail comes back with it, and
  Binomial(n_true, inconsistency) extra near misses are added. At temperature 0 all samples of a
  request are identical: each is sample 0's draw (a greedy answer is one trajectory, with its own
  idiosyncratic slips, which is why sampling several and voting helps).
- ``surface_variation``: each tail name of an expansion or free-generation answer is written as
  a surface variant (``variants.py``: case, "&"/"and", plural, a generic suffix, a hyphen) with
  this probability, drawn per sample, so the same entity can appear under several names.
- ``judge_noise``: a judgement's verdict flips with this probability (its confidence then moves
  half-way towards 0.5), and its confidence is jittered by ±0.2 · judge_noise.

Not noise, but teacher behaviour set here so it is one config: ``first_round_share`` (the share of
true tails, strongest first, an expansion's round 1 holds at most; later rounds give the rest)
and ``unknown_guesses`` (how many low-confidence guesses it makes about an entity it does not
know; 0 answers nothing).

Determinism: the shared (per-request) draws come from ``Random(seed, prompt hash)``, the
per-sample ones from ``Random(seed, prompt hash, sample index, temperature)``, so the same
request always gets the same answer (a request ``seed`` joins the key when the client sends one).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from graph.errors import InputError

FORMAT_ERRORS = ("truncated", "prose", "wrong_keys")
WRONG_KEYS = {
    "relations": "chosen_relations",
    "triples": "facts",
    "tails": "entities",
    "valid": "is_valid",
    "confidence": "score",
}
RATES = (
    "omission",
    "hallucination",
    "relation_confusion",
    "format_error",
    "inconsistency",
    "judge_noise",
    "surface_variation",
)


@dataclass(frozen=True)
class NoiseConfig:
    """Noise rates of the teacher (see the module docstring for what each does) and its seed."""

    omission: float = 0.0
    hallucination: float = 0.0
    relation_confusion: float = 0.0
    format_error: float = 0.0
    inconsistency: float = 0.0
    judge_noise: float = 0.0
    surface_variation: float = 0.0
    seed: int = 0
    first_round_share: float = 0.6
    unknown_guesses: int = 2

    def __post_init__(self) -> None:
        for name in (*RATES, "first_round_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"noise {name} = {value} is not a probability; give a value in [0, 1]")
        if self.first_round_share == 0.0:
            raise InputError("first_round_share must be above 0 (round 1 has to return something)")
        if self.unknown_guesses < 0:
            raise InputError(f"unknown_guesses = {self.unknown_guesses} must be 0 or more")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_id(self, base: str = "mokg-teacher") -> str:
        """A model name unique to these rates and seed, so response caches never mix noise levels."""
        digest = hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:10]
        return f"{base}-{digest}"


NOISE_LEVELS: dict[str, NoiseConfig] = {
    "low": NoiseConfig(0.10, 0.05, 0.05, 0.02, 0.05, 0.05, surface_variation=0.05),
    "medium": NoiseConfig(0.25, 0.15, 0.10, 0.05, 0.15, 0.10, surface_variation=0.15),
    "high": NoiseConfig(0.40, 0.35, 0.25, 0.15, 0.30, 0.20, surface_variation=0.30),
}


def noise_level(name: str, seed: int = 0) -> NoiseConfig:
    """A preset by name (``none`` is the zero-noise default), with ``seed``."""
    if name == "none":
        return NoiseConfig(seed=seed)
    if name not in NOISE_LEVELS:
        raise InputError(f"unknown noise level {name!r}; choose none, {', '.join(NOISE_LEVELS)}")
    preset = NOISE_LEVELS[name]
    return NoiseConfig(**{**preset.as_dict(), "seed": seed})


def prompt_hash(messages: Sequence[dict[str, str]]) -> str:
    """sha256 of the messages' roles and contents (the prompt's identity for the noise draws)."""
    text = json.dumps([[m.get("role", ""), m.get("content", "")] for m in messages], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def rng(*parts: object) -> random.Random:
    """A generator seeded from ``parts`` (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(repr(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Draws:
    """The two generators of one sample: ``shared`` by all samples of a request, ``sample`` its own."""

    shared: random.Random
    sample: random.Random
    extra: float  # the inconsistency rate

    @classmethod
    def of(
        cls, noise: NoiseConfig, phash: str, index: int, temperature: float, request_seed: int | None = None
    ) -> Draws:
        hot = temperature > 0
        base = (noise.seed, request_seed, phash)
        sample = rng(*base, index if hot else 0, float(temperature) if hot else 0.0)
        return cls(rng(*base), sample, noise.inconsistency)


def binomial(n: int, p: float, gen: random.Random) -> int:
    return sum(gen.random() < p for _ in range(n))


def hallucination_count(n_true: int, rate: float, gen: random.Random) -> int:
    """Binomial(n_true, rate), or Bernoulli(rate) when that is 0."""
    k = binomial(n_true, rate, gen)
    return k if k else int(gen.random() < rate)


def pick(pool: Sequence[str], k: int, exclude: set[str], gen: random.Random) -> list[str]:
    """Up to ``k`` distinct names of ``pool`` not in ``exclude`` (case-folded), drawn at random."""
    seen, out = set(exclude), []
    options = [p for p in dict.fromkeys(pool) if p.casefold() not in seen]
    gen.shuffle(options)
    for name in options[:k]:
        seen.add(name.casefold())
        out.append(name)
    return out


def insert_at_random(items: list[str], extra: Sequence[str], gen: random.Random) -> list[str]:
    out = list(items)
    for name in extra:
        out.insert(gen.randint(0, len(out)), name)
    return out


def malform(text: str, gen: random.Random) -> str:
    """The answer broken in one of :data:`FORMAT_ERRORS` (chosen with ``gen``)."""
    kind = gen.choice(FORMAT_ERRORS)
    if kind == "truncated":
        return text[: max(1, int(len(text) * gen.uniform(0.3, 0.9)))]
    if kind == "prose":
        return f"Sure! Here is what I found:\n{text}\nI hope this helps with your campaign."
    payload = json.loads(text)
    return json.dumps({WRONG_KEYS.get(k, k + "_value"): v for k, v in payload.items()})
