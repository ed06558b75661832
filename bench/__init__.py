"""Benchmarks of reconciler: start-up, planner CPU and memory, requests against their lower bounds.

Run everything and rewrite ``bench/RESULTS.md``: ``python -m bench`` (see ``bench/README.md``).
"""
