"""Measurement: where time and memory go (timed chain and learner wrappers, peak memory, the
learning probe)."""
