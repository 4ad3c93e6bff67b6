"""Placeholder package: see docs/STATUS.md for the issue that builds it."""
