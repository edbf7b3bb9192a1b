"""User-facing controls: `TuneReflowCLI`, the keyboard reader and the `lightning-bohb` console script."""
