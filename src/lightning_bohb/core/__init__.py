"""The search itself: optimization and base configs, search space, strategies, optimizer, the per-trial trainable."""
