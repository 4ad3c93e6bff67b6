"""GreenFlow computation allocation over a cascade of the project's own models (issue 20).

Method: "GreenFlow: A Computation Allocation Framework for Building Environmentally Sound
Recommendation System" (IJCAI 2023, arXiv:2312.16176). Per request, one action chain (a model
instance and an item count per cascade stage) is chosen to maximise the estimated reward under a
computation budget, with a dual variable updated online. :mod:`.outcomes` holds what the allocator
works on.
"""
