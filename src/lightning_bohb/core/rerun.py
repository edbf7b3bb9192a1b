"""Rerunning a trial exactly outside the search: the thread count it trains with, and the command.

A trial trains with as many torch threads as CPUs it reserves per rank (``cpus_per_trial`` over its
ranks, rounded down, at least 1: what Ray sets as ``OMP_NUM_THREADS`` for a worker), or with the
driver's own ``OMP_NUM_THREADS`` when that is set. The trial sets the count itself
(`torch.set_num_threads`), so it holds on any Ray cluster whatever its nodes' environment. Another
thread count sums a matrix product's parts in another order: a rerun on all cores may differ from
the trial in the last bits. So ``best_config.yaml`` begins with a comment holding the command that reruns
the trial exactly (``OMP_NUM_THREADS=1 python main.py fit --config best_config.yaml``), which
``lightning-bohb export-best`` prints. Imports neither Ray nor torch.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from typing import Mapping, Optional

THREADS_VARIABLE = "OMP_NUM_THREADS"
_COMMAND = re.compile(rf"^#\s+{THREADS_VARIABLE}=([1-9][0-9]{{0,5}}) python main\.py fit --config ", re.MULTILINE)


def trial_threads(cpus_per_trial: float, ranks: int = 1, environ: Mapping[str, str] = os.environ) -> int:
    """The torch thread count of every rank of a trial: the driver's ``OMP_NUM_THREADS`` (a positive
    number), else the CPUs one rank reserves, rounded down, at least 1 (Ray's rule for a worker)."""
    configured = environ.get(THREADS_VARIABLE, "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(math.floor(cpus_per_trial / max(ranks, 1)), 1)


def rerun_command(threads: int, config: str) -> str:
    """The shell command that reruns a trial exactly through the user's LightningCLI script (``main.py``)."""
    return f"{THREADS_VARIABLE}={threads} python main.py fit --config {shlex.quote(config)}"


def rerun_header(threads: int) -> str:
    """The comment ``best_config.yaml`` begins with (LightningCLI reads past comments)."""
    return (
        "# The best trial's complete LightningCLI config. It reruns the trial bit for bit (on CPU, deterministic\n"
        "# trainer) with the trial's thread count, through your LightningCLI script (main.py here):\n"
        f"#   {rerun_command(threads, 'best_config.yaml')}\n"
    )


def threads_of(text: str) -> Optional[int]:
    """The thread count the header of a ``best_config.yaml`` names, or ``None`` (an older file)."""
    found = _COMMAND.search(text[:2000])
    return int(found.group(1)) if found else None
