"""Audience targeting (issue 7): from a campaign to a scored, exported audience.

One :class:`~gnn.audience.base.Targeter` protocol and its registry (``base.py``); one module per
method: ``rule`` (Cypher, ``queries/library/audience_rule``), ``ppr`` (personalised PageRank),
``gnn`` (heterogeneous GraphSAGE on weak labels, ``weak_labels.py``), ``lookalike`` and ``density``
(seed expansion by a centroid, or by a density ratio from the training-free diffusion). ``metrics``
and ``evaluate`` back `mokg eval audience`; ``export`` backs `mokg audience export`. Nothing is
imported here, so importing the package does no work.
"""
