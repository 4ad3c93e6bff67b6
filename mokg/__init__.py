"""mokg: a knowledge-graph-centric data system for marketing and recommendation."""

from graph.version import code_version

__version__ = code_version()
