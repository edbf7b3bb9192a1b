"""`quiet_trial_output`: what a trial's process changes in itself, and nothing else.

Runs as Ray's ``worker_process_setup_hook`` (so from each worker's start: Tune logs a trial's
restore before the trial function runs) and again at the start of every trial. It changes only the
trial process, never the user's driver.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "ray.train", "ray.tune")


def quiet_trial_output() -> None:
    """Keep Lightning's and Tune's routine messages out of the trial logs the driver prints."""
    # Lightning announces GPUs, seeds and checkpoint paths at INFO for every trial; Tune logs each
    # restore. Warnings and errors still come through.
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 on torch 2.13 warns about torch's treespec API once per worker (not the user's code).
    warnings.filterwarnings("ignore", message=".*treespec.*")
    # What a trial writes into its session folder (LightningCLI's config.yaml, logger files, the
    # folders Tune makes) is readable by its owner only, like the session's own files.
    os.umask(0o077)
    # A paused session ends its held trial workers; one ended while Python runs a weakref callback
    # prints "Exception ignored in ... SystemExit" from Ray's SIGTERM handler. The exit is intended.
    if not getattr(sys.unraisablehook, "_lightning_bohb", False):
        sys.unraisablehook = _ignore_exit_in_callbacks(sys.unraisablehook)


def _ignore_exit_in_callbacks(previous: Any) -> Any:
    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, SystemExit):
            return
        previous(unraisable)

    hook._lightning_bohb = True  # type: ignore[attr-defined]
    return hook
