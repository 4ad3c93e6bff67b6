"""Settings of the TiM memory (arXiv 2311.08719) and of its evaluation."""

from __future__ import annotations

from dataclasses import dataclass

from graph.errors import InputError

INDEXES = ("lsh", "exact")


@dataclass(frozen=True)
class MemoryConfig:
    """``index``: ``lsh`` (the paper's hashing) or ``exact`` (faiss flat inner product);
    ``buckets`` for LSH (0: about 64 thoughts a bucket, grown with the memory), ``probes`` > 1
    turns on multi-probe, and ``fill`` probes further buckets until ``k`` thoughts are found (the
    paper's single bucket may hold fewer, or none, in a small memory); ``forget``/``merge`` switch
    TiM's two organising operations; a group of at least ``merge_min`` active thoughts sharing
    head and relation is merged into one thought standing for at most ``merge_max`` turns.
    ``past_weight`` > 0 (an extension; the paper's 0: never) lets retired thoughts be recalled
    beside the active ones, their cosine scaled by it (questions about an ended episode)."""

    index: str = "lsh"
    buckets: int = 0
    probes: int = 1
    fill: bool = False
    forget: bool = True
    merge: bool = True
    merge_min: int = 3
    merge_max: int = 4
    past_weight: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.index not in INDEXES:
            raise InputError(f"unknown memory index {self.index!r}; use one of {', '.join(INDEXES)}")
        if self.buckets < 0 or self.buckets % 2:
            raise InputError(f"--buckets must be 0 (automatic) or a positive even number, got {self.buckets}")
        if self.probes < 1:
            raise InputError(f"--probes must be at least 1, got {self.probes}")
        if self.merge_min < 2:
            raise InputError(
                f"--merge-min must be at least 2 (a merge needs two thoughts), got {self.merge_min}"
            )
        if not 0.0 <= self.past_weight <= 1.0:
            raise InputError(f"--past-weight must be within [0, 1], got {self.past_weight}")
        if self.merge_max < self.merge_min:
            raise InputError(
                f"--merge-max ({self.merge_max}) must be at least --merge-min ({self.merge_min})"
            )
