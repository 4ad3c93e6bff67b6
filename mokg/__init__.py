"""mokg: a knowledge-graph-centric data system for marketing and recommendation."""

__version__ = "0.1.0"
