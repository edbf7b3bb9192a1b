"""The search itself: config, search space, strategies, optimizer and the per-trial trainable."""
