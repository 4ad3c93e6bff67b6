"""Datasets in (built-in sample graph; later the seeded marketing world and public readers)."""
