"""Cross-domain recommendation: PEACE (arXiv 2312.01916) and its baselines; see docs/rec.md."""
