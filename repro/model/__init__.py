"""What is trained: the heads and the dual encoder, and the losses (one registry)."""
