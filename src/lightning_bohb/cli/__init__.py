"""The terminal: `TuneReflowCLI` over the session runner, the keyboard reader, the live table, the `lightning-bohb` console script."""
