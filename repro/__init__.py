"""xlir-repro: zero-shot cross-lingual image retrieval and tagging (Aggarwal, Tambi, Kale)."""

__version__ = "0.1.0"
