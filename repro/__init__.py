"""xlir-repro: zero-shot cross-lingual image retrieval and tagging (Aggarwal, Tambi, Kale)."""

from repro.core import numerics as _numerics

# Before numpy and torch load their kernels: pin the CPU numerics (see repro/core/numerics.py).
_numerics.apply()

__version__ = "0.1.0"
