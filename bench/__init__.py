"""Benchmarks: run with one command each (see the README), never as timed tests."""
