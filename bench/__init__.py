"""Benchmarks: run with one command each (see the README), never as timed tests."""

import resource


def peak_rss_mb() -> float:
    """The process's peak resident set size in MB (``ru_maxrss``: monotone)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
