"""Mining the marketing knowledge graph with LLMs, and the small models that replace the big one.

``pipeline`` runs PAIR's stages (relation filtering, progressive expansion, aggregation, entity
resolution, writing) as ``mokg build``; ``documents`` mines text the same way with each fact's
span kept; ``llm`` holds the LLM clients behind one ``LLMClient`` protocol; ``teacher`` is the
world's OpenAI-compatible teacher answering from the hidden truth; ``lightpair`` distils and serves
the small LightPAIR model; ``tuning`` holds its adapters and alignment (LoRA, MultiLoRA, ULMA);
``privatelora`` splits its encoder between a cloud and a device; ``prompts`` the prompts and the
JSON they must be answered with. Mining reads and writes the graph through ``graph`` only.
"""
