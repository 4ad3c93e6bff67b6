"""Jobs that consume the graph's outputs downstream (each one ``run(store, config)``); it holds no
module yet. What exists today lives with its layer: audience exports in ``gnn.audience.export``,
recommendations in ``gnn.rec.serve``, graph exports in ``graph.export``.
"""
