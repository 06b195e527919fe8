"""The lowest layer: the one error type, checked file writes, CPU numerics, where work runs and on
which device."""
