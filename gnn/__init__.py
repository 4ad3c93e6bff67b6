"""Models that learn from the graph: ``rec`` (cross-domain recommendation: PEACE, LightGCN and the
other baselines, their evaluation and serving, ``mokg train peace`` / ``eval rec`` / ``recommend``)
and ``audience`` (audience targeting: the rule, PPR, GNN and look-alike targeters behind one
``Targeter`` protocol, their evaluation and the audited export, ``mokg audience``). They read the
store through ``graph`` and ``loaders``, and never open its files themselves.
"""
