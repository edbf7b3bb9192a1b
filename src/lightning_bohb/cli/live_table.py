"""A compact live table of the session's trials in the terminal (rich), under a progress header.

The header says what the batch progress lines say (`lightning_bohb.cli.progress.SearchProgress`):
trials done / total, running, paused on request or by the scheduler (waiting for their bracket),
epochs trained, the time elapsed, at most how long is left, and the best so far with its trial.
Each trial's outcome has the colour the dashboard gives it; the best trial is marked ``★``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional

from lightning_bohb.cli.format import OUTCOME_COLORS, assignments, duration, number
from lightning_bohb.cli.progress import search_progress
from lightning_bohb.session.history import BRACKET_STRATEGIES, trial_outcome
from lightning_bohb.utils.plain import to_plain


class LiveTrialTable:
    """Redraws twice a second while the search runs; only when stdout is a terminal.

    Args:
        session: The running `lightning_bohb.session.runner.TuneSession`.
        pause_line: Returns the line under the table (the keys, or the pause under way).
        started: When this run started (`time.time`), for the elapsed time.
    """

    def __init__(self, session: Any, pause_line: Callable[[], str], started: Optional[float] = None) -> None:
        self.session = session
        self.pause_line = pause_line
        self.started = time.time() if started is None else started
        self._live: Any = None

    def start(self) -> bool:
        if not sys.stdout.isatty():
            return False
        from rich.live import Live

        self._live = Live(self, refresh_per_second=2, transient=False, redirect_stderr=False)
        self._live.start()
        return True

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        session = self.session
        coordinator = session.coordinator
        progress = search_progress(session, time.time() - self.started)
        metric = progress.metric or ""
        optimizer = session.optimizer
        max_epochs = optimizer.optimization_config.max_epochs if optimizer is not None else None
        brackets = getattr(getattr(optimizer, "strategy", None), "name", None) in BRACKET_STRATEGIES
        held = set(coordinator.holds.held) if coordinator is not None else set()
        best_trial = progress.best[0] if progress.best else None
        table = Table(box=None, pad_edge=False)
        for column in ("trial", "status", "epochs", "time", f"last {metric}", f"best {metric}", "config"):
            table.add_column(column, overflow="fold")
        trials = list(coordinator.trials) if coordinator is not None else []
        for trial in trials:
            last = trial.last_result or {}
            epochs = int(last.get("training_iteration", 0) or 0)
            outcome = trial_outcome(coordinator.status_of(trial), epochs, max_epochs, held=trial.trial_id in held, brackets=brackets)
            best = trial.trial_id == best_trial
            table.add_row(
                Text(("★ " if best else "") + trial.trial_id, style="bold" if best else ""),
                Text(outcome, style=OUTCOME_COLORS.get(outcome, "")),
                str(epochs),
                duration(last.get("time_total_s")),
                number(last.get(metric)),
                number(session.trial_best.get(trial.trial_id)),
                assignments(to_plain(dict(trial.config or {}))),
            )
        return Group(Text(", ".join(progress.parts()), style="bold"), table, Text(self.pause_line()))
