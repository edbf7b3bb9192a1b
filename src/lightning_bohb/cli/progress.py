"""A running search's progress: `SearchProgress` (the facts at one moment, shared by the terminal's
live table and the batch lines) and `BatchProgress` (what a session prints when stdout is not a
terminal: nohup, SLURM, Kubernetes, CI).

`BatchProgress` prints one line when a trial starts, continues, finishes, is stopped early, is paused or
fails, and a summary line every ``every`` seconds: trials running / done / total, paused (by you, or by
the scheduler waiting for its bracket), epochs trained, the best so far, the time elapsed, the estimate
of the time left and the command that pauses the session. Plain lines, flushed, no colours: a log file
reads the same as a terminal would have shown.

The estimate of the time left (`SearchProgress.left_s`) is an upper bound: every trial not ended yet
(and every trial not started yet) trains to ``max_epochs``, each epoch taking the mean epoch time of the
trials so far (Tune's ``time_total_s`` over their epochs), on as many trials at once as run now (or
``max_concurrent_trials``). Schedulers that stop trials early (ASHA, BOHB) finish sooner. There is none
before the first epoch ends.
"""

from __future__ import annotations

import datetime
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from lightning_bohb.cli.format import assignments, duration, number, plural
from lightning_bohb.core.best_trial import best_of
from lightning_bohb.pause.trial_status import TrialStatus
from lightning_bohb.session.history import BRACKET_STRATEGIES, trial_outcome
from lightning_bohb.utils.plain import to_plain

_COUNTED = (
    ("paused on request", "paused on request"),
    ("paused", "paused"),
    ("waiting for its bracket", "paused by the scheduler (waiting for their bracket)"),
    ("failed", "failed"),
)


@dataclass
class SearchProgress:
    """A running search at one moment (`search_progress`)."""

    outcomes: Dict[str, int]
    total: int
    epochs: int
    metric: Optional[str]
    best: Optional[Tuple[str, float]]  # (trial id, value)
    elapsed_s: float
    left_s: Optional[float]

    @property
    def done(self) -> int:
        return self.outcomes.get("finished", 0) + self.outcomes.get("stopped early", 0)

    def counts(self) -> List[str]:
        """``1 running``, ``5/8 done``, ``2 paused on request``, ...: the trials, in the order every output shows them."""
        parts = [f"{self.outcomes.get('running', 0)} running", f"{self.done}/{self.total} done"]
        return parts + [f"{self.outcomes[outcome]} {label}" for outcome, label in _COUNTED if self.outcomes.get(outcome)]

    def parts(self) -> List[str]:
        """`counts`, then epochs trained, the best so far, the time elapsed and the estimate of the time left."""
        parts = [*self.counts(), plural(self.epochs, "epoch"), self.best_text(), f"elapsed {duration(self.elapsed_s)}"]
        return parts + ([f"at most {duration(self.left_s)} left"] if self.left_s is not None else [])

    def best_text(self) -> str:
        if not self.metric or self.best is None:
            return "best: none yet"
        return f"best {self.metric}={number(self.best[1])} (trial {self.best[0]})"


def search_progress(session: Any, elapsed_s: float) -> SearchProgress:
    """The facts of ``session`` (a running `lightning_bohb.session.runner.TuneSession`) now."""
    coordinator = session.coordinator
    trials: List[Any] = list(coordinator.trials) if coordinator is not None else []
    status_of = coordinator.status_of if coordinator is not None else (lambda trial: trial.status)
    held = set(getattr(getattr(coordinator, "holds", None), "held", ()) or ())
    max_epochs = _max_epochs(session)
    brackets = _strategy_name(session) in BRACKET_STRATEGIES
    outcomes: Dict[str, int] = {}
    epochs = 0
    trained_s = trained_epochs = 0.0
    left_epochs = 0
    for trial in trials:
        count = _epochs(trial)
        epochs += count
        outcome = trial_outcome(status_of(trial), count, max_epochs, held=trial.trial_id in held, brackets=brackets)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        seconds = (trial.last_result or {}).get("time_total_s")
        if count and seconds is not None and _finite(seconds):
            trained_s, trained_epochs = trained_s + seconds, trained_epochs + count
        if outcome not in ("finished", "stopped early", "failed") and max_epochs:
            left_epochs += max(0, max_epochs - count)
    total = _num_samples(session) or len(trials)
    left_s = None
    if max_epochs and trained_epochs:
        left_epochs += max(0, total - len(trials)) * max_epochs
        limit = _max_concurrent(session)
        slots = max(1, outcomes.get("running", 0)) if limit is None else max(1, min(limit, max(1, outcomes.get("running", 0))))
        left_s = left_epochs * (trained_s / trained_epochs) / slots
    return SearchProgress(outcomes, total, epochs, _metric(session), _best(session, trials), elapsed_s, left_s)

class BatchProgress:
    """Progress lines for a running session.

    Args:
        session: The running `lightning_bohb.session.runner.TuneSession`.
        write: Prints one line (default: `print` with flush).
        every: Seconds between summary lines; 0 or less: none.
        clock: Returns the time (seconds); for tests.
    """

    def __init__(
        self,
        session: Any,
        write: Optional[Callable[[str], None]] = None,
        every: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self.write = write or (lambda line: print(line, flush=True))
        self.every = every
        self.clock = clock
        self.started = clock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- the summary line, every `every` seconds ------------------------------------------------
    def start(self) -> None:
        self.started = self.clock()
        if self.every > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="lightning_bohb-progress", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.write(self.summary_line())
            except Exception:  # never let a progress line end the session
                pass

    def summary_line(self) -> str:
        progress = search_progress(self.session, self.clock() - self.started)
        return f"{self._stamp()} progress: {', '.join(progress.parts())}; pause: {self.session.pause_command}"

    # -- one line per trial event -------------------------------------------------------------
    def trial_status(self, trial: Any, previous: Optional[str], status: str, held: bool = False) -> None:
        line = self.trial_line(trial, previous, status, held)
        if line:
            self.write(line)

    def trial_line(self, trial: Any, previous: Optional[str], status: str, held: bool = False) -> Optional[str]:
        name = f"trial {trial.trial_id}"
        epochs = _epochs(trial)
        if status == TrialStatus.RUNNING:
            if previous == TrialStatus.PAUSED or epochs:
                return f"{self._stamp()} {name} continues from epoch {epochs}"
            return f"{self._stamp()} {name} started: {_config(trial)}"
        if status == TrialStatus.PAUSED:
            why = "on request" if held else "by the scheduler (waiting for its bracket)"
            return f"{self._stamp()} {name} paused {why} after {plural(epochs, 'epoch')}{self._metric_text(trial)}"
        if status == TrialStatus.TERMINATED:
            max_epochs = _max_epochs(self.session)
            if max_epochs and epochs < max_epochs:
                return f"{self._stamp()} {name} stopped early after {plural(epochs, 'epoch')} of {max_epochs}{self._metric_text(trial)}"
            return f"{self._stamp()} {name} finished after {plural(epochs, 'epoch')}{self._metric_text(trial)}"
        if status == TrialStatus.ERROR:
            return f"{self._stamp()} {name} failed after {plural(epochs, 'epoch')}; see {getattr(trial, 'path', None) or 'its log'}"
        return None

    # -- formatting ---------------------------------------------------------------------------
    def _metric_text(self, trial: Any) -> str:
        metric = _metric(self.session)
        best = self.session.trial_best.get(trial.trial_id)
        last = (trial.last_result or {}).get(metric) if metric else None
        if not metric or last is None:
            return ""
        text = f": {metric}={number(last)}"
        return text + (f" (best {number(best)})" if best is not None and best != last else "")

    def _stamp(self) -> str:
        return datetime.datetime.fromtimestamp(self.clock()).strftime("%H:%M:%S")


def _epochs(trial: Any) -> int:
    return int((trial.last_result or {}).get("training_iteration", 0) or 0)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metric(session: Any) -> Optional[str]:
    return session.optimizer.metric if session.optimizer is not None else None


def _best(session: Any, trials: List[Any]) -> Optional[Tuple[str, float]]:
    """The best of ``trials`` (Tune's, in its order) so far and its value (`lightning_bohb.core.best_trial`)."""
    if not _metric(session):
        return None
    return best_of(((trial.trial_id, session.trial_best.get(trial.trial_id)) for trial in trials), session.optimizer.mode)


def _option(session: Any, name: str) -> Any:
    optimizer = session.optimizer
    return getattr(optimizer.optimization_config, name, None) if optimizer is not None else None


def _num_samples(session: Any) -> Optional[int]:
    return _option(session, "num_samples")


def _max_epochs(session: Any) -> Optional[int]:
    return _option(session, "max_epochs")


def _max_concurrent(session: Any) -> Optional[int]:
    return _option(session, "max_concurrent_trials")


def _strategy_name(session: Any) -> Optional[str]:
    strategy = getattr(session.optimizer, "strategy", None) if session.optimizer is not None else None
    return getattr(strategy, "name", None)


def _config(trial: Any) -> str:
    return assignments(to_plain(dict(trial.config or {}))) or "(no parameters)"
