"""`TuneReflowCLI`: the terminal front end of a session (keys, live table, messages).

Controls: ``p`` pauses at the next validation boundary (again cancels), ``q`` quits now, Ctrl+C
pauses (twice quits), SIGTERM/SIGUSR1 pause within ``grace_period`` seconds, SIGUSR2 quits now.
Everything else (lock, state, signals, Ray, the pause channel) is `lightning_bohb.session.runner.TuneSession`.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from lightning_bohb.cli.format import assignments, duration, number
from lightning_bohb.cli.keyboard import KeyboardMonitor
from lightning_bohb.cli.live_table import LiveTrialTable
from lightning_bohb.cli.progress import BatchProgress, search_progress
from lightning_bohb.core.optimizer import ConfigDrivenOptimizer
from lightning_bohb.exceptions import EXIT_LOCK_LOST, EXIT_PAUSED, LightningTuneError, SessionLockLost, SessionPaused
from lightning_bohb.log import console_handler, logger
from lightning_bohb.session.events import PauseReport, SessionListener
from lightning_bohb.session.runner import TuneSession
from lightning_bohb.session.state import TuneSessionState
from lightning_bohb.utils.layout import STATE_FILE
from lightning_bohb.utils.plain import to_plain


class TuneReflowCLI(SessionListener):
    """Runs a `ConfigDrivenOptimizer` as a session with pause/resume, from a terminal or a batch job.

    Args:
        experiment_name: Folder name under ``experiment_dir``. The optimizer's `OptimizationConfig`
            may leave it unset; if both are set they must agree.
        experiment_dir: Where sessions live: ``<experiment_dir>/<experiment_name>/session_<id>/``
            (default: the optimizer's, else ``./experiments``).
        session_id: Reuse a given id (default: ``YYYYmmdd_HHMMSS_<6 hex>``).
        enable_pause: Read the ``p``/``q`` keys when a terminal is attached.
        verbose: Print the banner, pause and resume reports.
        on_pause: Called as ``on_pause(session_dir, resume_command)`` after the session paused (for a
            session in object storage, ``session_dir`` is its URI).
        grace_period: Seconds after SIGTERM/SIGUSR1 before a pause that is still waiting quits now.
        import_paths: Folders saved with the session and put on the import path when it resumes
            (the script's folder and the working directory are always saved).
        progress_every: Without a terminal (batch jobs), seconds between progress summary lines
            (trials running/done/total, epochs, best, elapsed, the pause command); 0 for none.
            Default: ``LIGHTNING_BOHB_PROGRESS_EVERY`` if set (for scripts you cannot change), else 30.
            A line for each trial that starts, finishes, stops early, pauses or fails is printed anyway.
    """

    def __init__(
        self,
        experiment_name: Optional[str] = None,
        experiment_dir: Optional[Union[str, Path]] = None,
        session_id: Optional[str] = None,
        enable_pause: bool = True,
        verbose: bool = True,
        on_pause: Optional[Callable[[Union[Path, str], str], None]] = None,
        grace_period: float = 25.0,
        import_paths: Sequence[str] = (),
        progress_every: Optional[float] = None,
    ) -> None:
        self.session = TuneSession(
            experiment_name,
            experiment_dir,
            session_id=session_id,
            grace_period=grace_period,
            import_paths=import_paths,
            listener=self,
            auto_pause=lambda metrics: self.should_auto_pause(metrics),
        )
        self.enable_pause = enable_pause
        self.verbose = verbose
        self.on_pause = on_pause
        self.start_time = time.time()
        self._keyboard: Optional[KeyboardMonitor] = None
        self._table: Optional[LiveTrialTable] = None
        self.progress_every = _progress_every(progress_every)
        self._progress: Optional[BatchProgress] = None

    # -- public API (the seed's) -------------------------------------------------------------
    @classmethod
    def resume(
        cls,
        session_dir: Union[str, Path],
        allow_code_changes: bool = False,
        force: bool = False,
        trust: bool = False,
        num_samples: Optional[int] = None,
        max_concurrent_trials: Optional[int] = None,
        cpus_per_trial: Optional[float] = None,
        gpus_per_trial: Optional[float] = None,
    ) -> "TuneReflowCLI":
        """Load a paused (or interrupted) session; its directory may have moved since (or give its URI,
        for a session in object storage).

        Refuses a session folder another user owns or could have written to (its state is a pickle)
        unless ``trust`` (or LIGHTNING_BOHB_TRUST=1); then refuses when the search space, strategy,
        model or datamodule code changed since the session started, unless ``allow_code_changes``
        (or LIGHTNING_BOHB_ALLOW_CODE_CHANGES=1).
        ``force`` takes over a lock that still looks live (see `TuneSession`), saying whose it was.
        ``num_samples``, ``max_concurrent_trials``, ``cpus_per_trial``, ``gpus_per_trial``: a new budget
        or shape for the search, kept by later resumes (see `TuneSession.resume`; README "Resume with a
        new budget or shape").
        """
        cli = cls()
        try:
            session = TuneSession.resume(
                session_dir,
                allow_code_changes,
                trust=trust,
                listener=cli,
                auto_pause=lambda metrics: cli.should_auto_pause(metrics),
                force=force,
                num_samples=num_samples,
                max_concurrent_trials=max_concurrent_trials,
                cpus_per_trial=cpus_per_trial,
                gpus_per_trial=gpus_per_trial,
            )
        except LightningTuneError:
            sys.excepthook = _exit_quietly(sys.excepthook)  # uncaught in a script: one error line
            raise
        cli.session = session
        for change in session.code_changes:
            print(f"⚠️ Resuming despite a code change: {change}", file=sys.stderr)
        return cli

    @property
    def experiment_name(self) -> Optional[str]:
        return self.session.experiment_name

    @property
    def session_id(self) -> str:
        return self.session.session_id

    @property
    def session_dir(self) -> Path:
        return self.session.session_dir

    @property
    def state(self) -> Optional[TuneSessionState]:
        return self.session.state

    @property
    def pause_requested(self) -> bool:
        return self.session.pause.pause_pending

    @property
    def resume_command(self) -> str:
        return self.session.resume_command

    def should_auto_pause(self, metrics: Dict[str, Any]) -> bool:
        """Override to pause the session automatically; called with every reported result."""
        return False

    def run(
        self, optimizer: Optional[ConfigDrivenOptimizer] = None, resume: bool = False, *, callbacks: Sequence[Any] = (),
        tune_verbose: int = 0,
    ):
        """Run the session; returns Ray's `ResultGrid` when the search finishes.

        ``callbacks`` are Ray Tune callbacks added to the session's own; ``tune_verbose`` is Tune's ``verbose``.

        Raises:
            SessionPaused: The session paused (a `KeyboardInterrupt`); its message has the resume command.
                Left uncaught, the process exits with status 3 and no traceback.
        """
        _freeze_objects_at_exit()
        previous_hook = sys.excepthook
        sys.excepthook = _exit_quietly(previous_hook)
        handler = console_handler() if self.verbose else None
        previous_level = logger.level
        if handler is not None:  # the package's messages on the terminal while this run lasts
            logger.addHandler(handler)
            logger.setLevel(min(previous_level or logging.INFO, logging.INFO))
        try:
            results = self.session.run(optimizer, resume=resume, callbacks=callbacks, tune_verbose=tune_verbose)
        except (SessionPaused, LightningTuneError):
            raise  # the hook stays, so that uncaught it ends the process quietly
        except BaseException:
            sys.excepthook = previous_hook
            raise
        finally:
            if handler is not None:
                logger.removeHandler(handler)
                logger.setLevel(previous_level)
        sys.excepthook = previous_hook
        return results

    # -- controls (any thread) ---------------------------------------------------------------
    def toggle_pause(self) -> None:
        self.session.toggle_pause()

    def request_pause(self) -> None:
        self.session.request_pause()

    def quit_now(self) -> None:
        self.session.quit_now()

    # -- what the session tells us -----------------------------------------------------------
    def on_resume(self, session: TuneSession) -> None:
        self._say(f"♻️ Resuming session: {session.session_id}")
        self._say("✅ All configuration restored from session state:")
        for item in ("Search space", "Strategy", "Base config", "Optimization config"):
            self._say(f"   • {item}: ✓")
        self._say("Continuing optimization...")

    def on_start(self, session: TuneSession) -> None:
        self._keyboard = KeyboardMonitor({"p": self.toggle_pause, "q": self.quit_now})
        keys = self._keyboard.start() if self.enable_pause else False
        if keys:
            self._say(
                "🎮 Interactive mode enabled:\n"
                "   Press 'p' to pause at next validation\n"
                "   Press 'q' to quit immediately\n"
                "   Press Ctrl+C to pause gracefully"
            )
        elif self.enable_pause:
            self._say(
                "⌨️ No terminal: keyboard controls are off. Pause with Ctrl+C, SIGTERM/SIGUSR1, or: "
                f"{session.pause_command}"
            )
        self._say(f"💾 Session state saved to: {session.location_of(STATE_FILE)}")
        self._say("Running optimization...")
        self._table = LiveTrialTable(session, self._pause_line, self.start_time)
        if self.verbose and not self._table.start():  # no terminal: plain progress lines instead
            self._progress = BatchProgress(session, self._say, every=self.progress_every)
            self._progress.start()

    def on_stop(self, session: TuneSession) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._table is not None:
            self._table.stop()
        if self._keyboard is not None:
            self._keyboard.stop()

    def on_trial_status(self, session: TuneSession, trial: Any, previous: Optional[str], status: str) -> None:
        if self._progress is not None:
            held = session.coordinator is not None and trial.trial_id in session.coordinator.holds.held
            self._progress.trial_status(trial, previous, status, held=held)

    def on_pause_requested(self, session: TuneSession) -> None:
        self._say("⏸️ Pause requested. Waiting for trials to reach validation boundaries...")

    def on_pause_cancelled(self, session: TuneSession) -> None:
        self._say("▶️ Pause cancelled; continuing.")

    def on_quit_requested(self, session: TuneSession) -> None:
        self._say("⏹️ Quitting now; running trials continue later from their last checkpoints.")

    def on_completed(self, session: TuneSession, best_config: Optional[Path]) -> None:
        self._say("\n".join(["🏁 Optimization complete.", *final_summary(session, time.time() - self.start_time)]))

    def on_failed(self, session: TuneSession, error: BaseException) -> None:
        if isinstance(error, SessionLockLost):
            return  # another driver owns the session now: its one error line says so, and this one must not resume it
        self._say(f"❌ Optimization failed. The session can still be resumed:\n   {session.resume_command}")

    def on_paused(self, session: TuneSession, report: PauseReport) -> None:
        lines = [
            "",
            "✅ OPTIMIZATION PAUSED",
            f"📊 Session: {session.session_id}",
            f"💾 State saved to: {session.location_of(STATE_FILE)}",
        ]
        if report.quit:
            lines.append("⚠️ Quit without waiting for validation: running trials resume from their last reported checkpoints.")
        for trial_id, epoch in report.timed_out.items():
            where = "no checkpoint yet (restarts from scratch)" if epoch is None else f"its checkpoint of epoch {epoch}"
            lines.append(
                f"⚠️ Trial {trial_id} did not reach validation within pause_timeout; stopped at {where}: "
                "the epoch in flight is lost."
            )
        for trial_id, why in report.epoch_end_only.items():
            lines.append(f"⚠️ Trial {trial_id} {why}")
        lines += ["", "📝 To resume this EXACT session with all settings, run:", f"   {session.resume_command}"]
        self._say("\n".join(lines))
        if self.on_pause is not None:
            self.on_pause(session.backend.where, session.resume_command)

    def _pause_line(self) -> str:
        session, coordinator = self.session, self.session.coordinator
        if coordinator is not None and coordinator.stop_reason is not None:
            return "pausing: saving the session (every running trial's checkpoint is in)"
        if session.pause.pause_pending and coordinator is not None:
            return f"pause requested: waiting for {len(coordinator.waiting)} trials to reach validation"
        return "p: pause at next validation   q: quit now   Ctrl+C: pause"

    def _say(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)


def final_summary(session: TuneSession, elapsed_s: float) -> List[str]:
    """The lines after a completed search: the best value, its trial and config, the time, the best config's file."""
    progress = search_progress(session, elapsed_s)
    lines = [f"   Trials: {', '.join(progress.counts()[1:])}"]
    if progress.best is not None:
        trial_id, value = progress.best
        trial = next((t for t in session.coordinator.trials if t.trial_id == trial_id), None) if session.coordinator else None
        config = assignments(to_plain(dict(trial.config or {}))) if trial is not None else ""
        lines += [f"   Best {progress.metric}: {number(value)} (trial {trial_id})", f"   Its values: {config or '(no parameters)'}"]
    else:
        lines.append("   Best: no trial reported the metric")
    lines.append(f"   Time: {duration(elapsed_s)} ({progress.epochs} epochs trained)")
    lines.append(f"   Best config: {session.location_of('best_config.yaml')}")
    return lines


def _progress_every(value: Optional[float]) -> float:
    if value is not None:
        return float(value)
    text = os.environ.get("LIGHTNING_BOHB_PROGRESS_EVERY", "")
    try:
        return float(text) if text.strip() else 30.0
    except ValueError:
        raise LightningTuneError(f"LIGHTNING_BOHB_PROGRESS_EVERY={text!r} is not a number of seconds; e.g. 30, or 0 for none.") from None


def _freeze_objects_at_exit() -> None:
    """At the interpreter's exit, before its other exit handlers, move every object still alive out of
    the garbage collector's view (``gc.freeze``).

    With torch, Lightning and Ray loaded, the collections of the interpreter's final teardown take
    about 1 s of a driver's exit on 2 cores (0.15 s frozen). Frozen objects are still freed by their
    reference counts; objects in reference cycles are then not finalized at exit, which Python never
    promised (its data model: ``__del__`` is not guaranteed to run for objects alive at exit).
    """
    global _FREEZE_REGISTERED
    if not _FREEZE_REGISTERED:
        atexit.register(gc.freeze)  # exit handlers run last-registered first: before Ray's and logging's
        _FREEZE_REGISTERED = True


_FREEZE_REGISTERED = False


def _exit_quietly(previous: Callable[..., Any]) -> Callable[..., Any]:
    """An excepthook: uncaught, `SessionPaused` ends the process with `EXIT_PAUSED` and no traceback,
    and a `LightningTuneError` (bad session, bad config) with one ``error:`` line and exit status 1."""

    if getattr(previous, "_lightning_bohb", False):
        return previous

    def hook(exc_type: Any, exc: BaseException, tb: Any) -> None:
        if issubclass(exc_type, (SessionPaused, LightningTuneError)):
            if issubclass(exc_type, LightningTuneError):
                print(f"error: {exc}", file=sys.stderr)
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_PAUSED if issubclass(exc_type, SessionPaused) else EXIT_LOCK_LOST if issubclass(exc_type, SessionLockLost) else 1)
        previous(exc_type, exc, tb)

    hook._lightning_bohb = True  # type: ignore[attr-defined]
    return hook
