"""Benchmarks run with pytest-benchmark: `pytest benchmarks --benchmark-enable`."""
