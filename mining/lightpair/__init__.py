"""LightPAIR: a small white-box model distilled from the teacher's answers to PAIR's prompts
(arXiv 2312.05276, PAPERS.md §1), served behind the ``LLMClient`` protocol.

``corpus.py`` turns a mining run's transcript into training examples, ``model.py`` is the model
(MiniLM encoder + three task heads), ``train.py`` distils it, ``client.py`` serves it and
``evaluate.py`` compares it with the teacher on held-out seeds. Nothing heavy is imported here.
"""
