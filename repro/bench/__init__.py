"""Benchmarks that print ratios against a baseline measured in the same run, and the GPU and
paper-scale checks."""
