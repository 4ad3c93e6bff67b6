"""Multi-aspect retrieval over the KG's item aspects (issue 17): MURAL ("A Multi-Granularity-Aware
Aspect Learning Model for Multi-Aspect Dense Retrieval", arXiv 2312.02538) beside BM25, the zero-shot
MiniLM, BIBERT, MTBERT and MADRAL.

The corpora (:mod:`.corpus`), the baselines (:mod:`.bm25`, :mod:`.biencoder`), the model and its
training (:mod:`.aspects`, :mod:`.mural`, :mod:`.mural_train`, :mod:`.methods`), the metrics
(:mod:`.evaluate`), the evaluation ``run(store, config)`` (:mod:`.run`, :mod:`.report`), and serving:
the faiss item index (:mod:`.index`), built by :mod:`.serve` and searched by :mod:`.search`
(``mokg search``).
"""
