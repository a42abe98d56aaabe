"""Benchmarks of the delivery worker against a plain Dramatiq baseline (``python -m bench``).

See docs/benchmarks.md for what each scenario measures and the latest figures.
"""
