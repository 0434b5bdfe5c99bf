"""Benchmarks of the template and what it renders: `python -m benchmarks`."""
