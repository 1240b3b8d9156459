"""Benchmarks: each script prints our figures and a peer's side by side from one run."""
