#!/usr/bin/env python
"""main.py - the project's own LightningCLI script, unchanged by the search.

    python examples/main.py fit --config examples/config.yaml              # one run, as before
    python examples/main.py fit --config <session>/best_config.yaml        # the best trial again, bit for bit
"""

from lightning.pytorch.cli import LightningCLI

if __name__ == "__main__":
    LightningCLI()
