"""A user's own LightningCLI script, as LightningCLI's docs write it: ``python lightning_cli_main.py fit --config c.yaml``."""

from lightning.pytorch.cli import LightningCLI

if __name__ == "__main__":
    LightningCLI()
