"""`python -m lightning_bohb`: the same as the `lightning-bohb` console script."""

from lightning_bohb.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
