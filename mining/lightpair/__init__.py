"""LightPAIR: a small white-box model distilled from the teacher's answers to PAIR's prompts,
served behind the ``LLMClient`` protocol (Gan et al., "Making Large Language Models Better
Knowledge Miners for Online Marketing with Progressive Prompting Augmentation", arXiv 2312.05276).

``corpus.py`` turns a mining run's transcript into training examples, ``model.py`` is the model
(MiniLM encoder + three task heads), ``losses.py``, ``training.py`` and ``calibration.py`` distil
it (``train.py`` re-exports their names, ``distill.py`` runs the whole recipe), ``client.py``
serves it and ``evaluate.py`` compares it with the teacher on held-out seeds. Nothing heavy is imported here.
"""
