"""`BatchProgress`: what a session prints when stdout is not a terminal (nohup, SLURM, Kubernetes, CI).

One line when a trial starts, continues, finishes, is stopped early, is paused or fails, and a
summary line every ``every`` seconds: trials running / done / total, epochs trained, the best so
far, the time elapsed and the command that pauses the session. Plain lines, flushed, no colours:
a log file reads the same as a terminal would have shown.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from lightning_bohb.utils.plain import to_plain

_TERMINATED, _ERROR, _RUNNING, _PAUSED, _PENDING = "TERMINATED", "ERROR", "RUNNING", "PAUSED", "PENDING"


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
        session = self.session
        coordinator = session.coordinator
        trials: List[Any] = list(coordinator.trials) if coordinator is not None else []
        status_of = coordinator.status_of if coordinator is not None else (lambda trial: trial.status)
        counts: Dict[str, int] = {}
        for trial in trials:
            status = status_of(trial)
            counts[status] = counts.get(status, 0) + 1
        epochs = sum(_epochs(trial) for trial in trials)
        total = _num_samples(session) or len(trials)
        parts = [
            f"{counts.get(_RUNNING, 0)} running",
            f"{counts.get(_TERMINATED, 0)}/{total} done",
        ]
        if counts.get(_PAUSED):
            parts.append(f"{counts[_PAUSED]} paused")
        if counts.get(_ERROR):
            parts.append(f"{counts[_ERROR]} failed")
        parts += [f"{epochs} epoch{'s' * (epochs != 1)}", self._best_text(), f"elapsed {_duration(self.clock() - self.started)}"]
        return f"{self._stamp()} progress: {', '.join(parts)}; pause: {session.pause_command}"

    # -- one line per trial event -------------------------------------------------------------
    def trial_status(self, trial: Any, previous: Optional[str], status: str, held: bool = False) -> None:
        line = self.trial_line(trial, previous, status, held)
        if line:
            self.write(line)

    def trial_line(self, trial: Any, previous: Optional[str], status: str, held: bool = False) -> Optional[str]:
        name = f"trial {trial.trial_id}"
        epochs = _epochs(trial)
        if status == _RUNNING:
            if previous == _PAUSED or epochs:
                return f"{self._stamp()} {name} continues from epoch {epochs}"
            return f"{self._stamp()} {name} started: {_config(trial)}"
        if status == _PAUSED:
            why = "on request" if held else "by the scheduler (waiting for its bracket)"
            return f"{self._stamp()} {name} paused {why} after {_plural(epochs, 'epoch')}{self._metric_text(trial)}"
        if status == _TERMINATED:
            max_epochs = _max_epochs(self.session)
            if max_epochs and epochs < max_epochs:
                return f"{self._stamp()} {name} stopped early after {_plural(epochs, 'epoch')} of {max_epochs}{self._metric_text(trial)}"
            return f"{self._stamp()} {name} finished after {_plural(epochs, 'epoch')}{self._metric_text(trial)}"
        if status == _ERROR:
            return f"{self._stamp()} {name} failed after {_plural(epochs, 'epoch')}; see {getattr(trial, 'path', None) or 'its log'}"
        return None

    # -- formatting ---------------------------------------------------------------------------
    def _metric_text(self, trial: Any) -> str:
        metric = _metric(self.session)
        best = self.session.trial_best.get(trial.trial_id)
        last = (trial.last_result or {}).get(metric) if metric else None
        if not metric or last is None:
            return ""
        text = f": {metric}={_number(last)}"
        return text + (f" (best {_number(best)})" if best is not None and best != last else "")

    def _best_text(self) -> str:
        metric = _metric(self.session)
        optimizer = self.session.optimizer
        mode = optimizer.mode if optimizer is not None else "min"
        scores = dict(self.session.trial_best)
        if not metric or not scores:
            return "best: none yet"
        trial_id = (min if mode == "min" else max)(scores, key=lambda key: scores[key])
        return f"best {metric}={_number(scores[trial_id])} (trial {trial_id})"

    def _stamp(self) -> str:
        return datetime.datetime.fromtimestamp(self.clock()).strftime("%H:%M:%S")


def _epochs(trial: Any) -> int:
    return int((trial.last_result or {}).get("training_iteration", 0) or 0)


def _metric(session: Any) -> Optional[str]:
    return session.optimizer.metric if session.optimizer is not None else None


def _num_samples(session: Any) -> Optional[int]:
    optimizer = session.optimizer
    return optimizer.optimization_config.num_samples if optimizer is not None else None


def _max_epochs(session: Any) -> Optional[int]:
    optimizer = session.optimizer
    return optimizer.optimization_config.max_epochs if optimizer is not None else None


def _config(trial: Any) -> str:
    config = to_plain(dict(trial.config or {}))
    return ", ".join(f"{key}={_number(value)}" for key, value in config.items()) or "(no parameters)"


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(0.0, seconds))))
