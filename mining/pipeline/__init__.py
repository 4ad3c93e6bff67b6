"""PAIR's mining pipeline: small stages composed by ``job.mine``.

Paper (PAIR): Gan et al., "Making Large Language Models Better Knowledge Miners for Online Marketing with
Progressive Prompting Augmentation", arXiv 2312.05276.

- ``seeds``: the entities mining starts from (the store's intents, or a file);
- ``relation_filter``: adaptive relation filtering over the closed, schema-checked relation set
  (or, as the ablation, free relation generation mapped back to the schema);
- ``expand``: progressive entity expansion, prompts augmented with what earlier rounds found;
- ``resolve``: entity resolution of tail names to store entities (normalisation, then MiniLM);
- ``aggregate``: self-consistency vote and semantic relatedness, top-k per (head, relation);
- ``write``: accepted triples into the store with their provenance, idempotently;
- ``evaluate``: precision/recall/F1 against the world's hidden KG, entity-resolution accuracy.
"""
