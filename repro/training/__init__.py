"""One run: the task it sees, the deterministic seeded trainer, evaluation, a run as a job of the
grid."""
