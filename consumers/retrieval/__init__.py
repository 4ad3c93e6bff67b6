"""Multi-aspect retrieval over the KG's item aspects (issue 17).

This increment holds everything around the MURAL model: the corpora (:mod:`.corpus`), the BM25 and
zero-shot MiniLM baselines (:mod:`.bm25`, :mod:`.biencoder`), the faiss item index served by
``mokg search`` (:mod:`.index`), the metrics (:mod:`.evaluate`) and the entry point
``run(store, config)`` (:mod:`.run`). MURAL plugs in later as one more method.
"""
