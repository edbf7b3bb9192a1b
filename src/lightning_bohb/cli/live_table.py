"""A compact live table of the session's trials in the terminal (rich), with the pause state."""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Optional

from lightning_bohb.utils.plain import to_plain


class LiveTrialTable:
    """Redraws twice a second while the search runs; only when stdout is a terminal.

    Args:
        snapshot: Returns ``(trials, status_of, trial_best, metric, pause_line)`` for the current moment.
    """

    def __init__(self, snapshot: Callable[[], Any]) -> None:
        self.snapshot = snapshot
        self._live = None

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

    def __rich__(self):
        from rich.table import Table

        trials, status_of, trial_best, metric, pause_line = self.snapshot()
        table = Table(title="LightningTune trials", caption=pause_line, box=None, pad_edge=False)
        for column in ("trial", "status", "config", "epochs", f"last {metric}", f"best {metric}"):
            table.add_column(column, overflow="fold")
        for trial in trials:
            last = trial.last_result or {}
            table.add_row(
                trial.trial_id,
                status_of(trial),
                _short(to_plain(dict(trial.config or {}))),
                str(last.get("training_iteration", 0)),
                _number(last.get(metric)),
                _number(trial_best.get(trial.trial_id)),
            )
        return table


def _short(config: Dict[str, Any]) -> str:
    return ", ".join(f"{k}={_number(v)}" for k, v in config.items())


def _number(value: Optional[Any]) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
