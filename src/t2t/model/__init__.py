"""The model: one set of blocks (norms, attention, feed-forward, positions) and the three architectures."""
