"""`reshape_config`: a resumed session's new budget or shape (``resume --num-samples/--max-concurrent-trials/
--cpus-per-trial/--gpus-per-trial``), checked against what the session has already created."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.state import TuneSessionState, tune_trial_count
from lightning_bohb.utils.layout import TUNE_FOLDER

_RESHAPES = ("num_samples", "max_concurrent_trials", "cpus_per_trial", "gpus_per_trial")
_LIMIT_WRAPPED = ("optuna", "hyperopt")
"""Strategies whose searcher Ray's ConcurrencyLimiter wraps only when a limit is set."""


def reshape_config(
    state: TuneSessionState, session_dir: Path, fix: str = "Resume with --num-samples {created} or more", **shape: Any
) -> OptimizationConfig:
    """The session's `OptimizationConfig` with a new budget or shape (the values given, not None).

    A larger ``num_samples`` continues the search (the searcher and scheduler keep everything they
    decided); a smaller one than the trials already created is refused, and so is adding a
    concurrency limit to an Optuna or HyperOpt search that had none (the limiter Ray wraps around
    the searcher would not know the trials already running, and would not pass on their results).
    New values are validated as `OptimizationConfig` validates them (`ConfigError`).
    """
    old = state.optimization_config
    given = {name: shape[name] for name in _RESHAPES if shape.get(name) is not None}
    if not given:
        return old
    new = dataclasses.replace(old, **given)
    created = tune_trial_count(session_dir, TUNE_FOLDER)
    if new.num_samples < created:
        raise SessionError(
            f"The value of `num_samples` is {new.num_samples}, but session {session_dir} has already created {created} trials "
            f"(they keep their results and checkpoints); a budget smaller than that cannot be kept. "
            f"{fix.format(created=created)} (now: {old.num_samples})."
        )
    strategy = getattr(state.strategy, "name", "")
    if strategy in _LIMIT_WRAPPED and not old.max_concurrent_trials and new.max_concurrent_trials:
        raise SessionError(
            f"Session {session_dir} started its {strategy} search without `max_concurrent_trials`, so Ray saved its "
            "searcher without a concurrency limiter; one added now would not know the trials already created and "
            "would not pass on their results. Resume without --max-concurrent-trials (cpus_per_trial then bounds "
            "how many run at once)."
        )
    return new
