"""Models that read the graph as a service, each a folder with its config, model parts, evaluation
and a ``run(store, config)`` entry: multi-aspect retrieval (:mod:`consumers.retrieval`) and density
estimation (:mod:`consumers.density`). Audience exports live in ``gnn.audience.export``,
recommendations in ``gnn.rec.serve``, graph exports in ``graph.export``.
"""
