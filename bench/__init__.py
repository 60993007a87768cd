"""Benchmarks (`make bench`): courriel measured beside reference servers in one run."""
