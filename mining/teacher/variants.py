"""Surface variants: the same entity written the way a language model might write it.

A real LLM rarely repeats a catalogue name verbatim: it changes case, swaps "&" and "and", drops
or adds a plural, appends a generic head noun, or slips a letter. The teacher's
``surface_variation`` rate (see ``noise.py``) rewrites a tail name with one of
:data:`VARIANT_KINDS`, so the mining side has to resolve names to entities (PAIR's aggregation
merges surface variants before writing), and ``mokg eval mining`` can measure entity-resolution
accuracy on names whose true entity is known.
"""

from __future__ import annotations

import random
import re

VARIANT_KINDS = ("lower", "ampersand", "plural", "suffix", "hyphen", "typo")
SUFFIXES = ("products", "items", "supplies")


def _plural(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    if word.endswith("y") and len(word) > 3 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _typo(name: str, gen: random.Random) -> str:
    """Two neighbouring letters of one longer word swapped (a spelling slip)."""
    spots = [m for m in re.finditer(r"[A-Za-z]{5,}", name)]
    if not spots:
        return name + "s"
    word = gen.choice(spots)
    at = gen.randrange(word.start() + 1, word.end() - 2)
    return name[:at] + name[at + 1] + name[at] + name[at + 2 :]


def surface_variant(name: str, gen: random.Random) -> str:
    """``name`` rewritten by one applicable kind of :data:`VARIANT_KINDS` (chosen with ``gen``)."""
    options = ["lower", "plural", "suffix", "typo"]
    if "&" in name or " and " in name:
        options.append("ampersand")
    if " " in name:
        options.append("hyphen")
    kind = gen.choice(options)
    if kind == "lower":
        return name.lower() if name != name.lower() else name.title()
    if kind == "ampersand":
        return name.replace("&", "and") if "&" in name else name.replace(" and ", " & ")
    if kind == "hyphen":
        at = gen.choice([m.start() for m in re.finditer(" ", name)])
        return name[:at] + "-" + name[at + 1 :]
    if kind == "typo":
        return _typo(name, gen)
    if kind == "plural":
        words = re.split(r"(\s+)", name)
        words[-1] = _plural(words[-1])
        return "".join(words)
    return f"{name} {gen.choice(SUFFIXES)}"
