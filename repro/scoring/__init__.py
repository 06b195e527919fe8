"""Scores of rankings: retrieval and tagging metrics (pure NumPy) and paired statistics over seeds
(SciPy)."""
