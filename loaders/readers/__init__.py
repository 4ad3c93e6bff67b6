"""Readers for public formats users bring: MovieLens ratings, Amazon reviews, generic triples,
RecBole dataset folders (atomic files, with an external KG).

Each reader is one frozen dataclass (its options) with ``read(path, *, domain=None) -> Dataset``;
:data:`READERS` holds one with default options per format. A reader validates the whole file
before it returns, and :func:`ingest_dataset` writes the result in one transaction, so bad input
is refused with an :class:`graph.errors.InputError` naming file, row and column, and nothing is
half-written::

    ds = READERS["movielens"].read(Path("ratings.csv"))
    with store.run_context("load") as run_id:
        ingest_dataset(store, ds, run_id)
"""

from __future__ import annotations

from loaders.readers.amazon import AmazonReader
from loaders.readers.dataset import Dataset, Reader, ingest_dataset
from loaders.readers.movielens import MovieLensReader
from loaders.readers.recbole import RecBoleReader
from loaders.readers.triples import TriplesReader

READERS: dict[str, Reader] = {
    MovieLensReader.name: MovieLensReader(),
    AmazonReader.name: AmazonReader(),
    TriplesReader.name: TriplesReader(),
    RecBoleReader.name: RecBoleReader(),
}

__all__ = [
    "READERS",
    "AmazonReader",
    "Dataset",
    "MovieLensReader",
    "Reader",
    "RecBoleReader",
    "TriplesReader",
    "ingest_dataset",
]
