"""PrivateLoRA (arXiv 2311.14030): LightPAIR's encoder split between a cloud and a device.

- ``adapter``: h = W₀x + B·M·A·x (A, B frozen in the cloud, M trainable on the device) and the
  plain-LoRA baseline;
- ``backbone``: the frozen MiniLM (or a tiny seeded BERT for tests) and the one-process classifier;
- ``wire``: the binary framing, byte counters and the simulated link;
- ``cloud`` / ``device``: the two processes and their protocol over 127.0.0.1;
- ``task``: the user's private feedback (PAIR's triple judgement from the world's truth);
- ``experiment`` / ``report``: traffic, throughput and tuning quality as one table.
"""
