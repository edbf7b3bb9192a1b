"""`TuneReflowCLI`: run a search as a session that can be paused and resumed, exactly.

Controls: ``p`` pauses at the next validation boundary (again cancels), ``q`` quits now, Ctrl+C
pauses (twice quits), SIGTERM/SIGUSR1 pause within ``grace_period`` seconds, SIGUSR2 quits now.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import shlex
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union

from lightning_bohb.cli.keyboard import KeyboardMonitor
from lightning_bohb.cli.live_table import LiveTrialTable
from lightning_bohb.core.optimizer import RAY_EXPERIMENT_FOLDER, ConfigDrivenOptimizer
from lightning_bohb.exceptions import EXIT_PAUSED, ConfigError, LightningTuneError, SessionError, SessionPaused
from lightning_bohb.session import ray_internals
from lightning_bohb.session.signals import SignalHandlers
from lightning_bohb.session.state import (
    COMPLETED,
    FAILED,
    PAUSED,
    RUNNING,
    SESSION_PREFIX,
    STATE_FILE,
    TuneSessionState,
    new_session_id,
    now_iso,
    read_summary,
    write_summary,
)
from lightning_bohb.session.fingerprint import check_unchanged, code_fingerprint
from lightning_bohb.session.store import SessionLock, make_private_dir

_SUMMARY_EVERY_S = 2.0


class TuneReflowCLI:
    """Wraps `ConfigDrivenOptimizer.run` with pause/resume of the whole session.

    Args:
        experiment_name: Folder name under ``experiment_dir``.
        experiment_dir: Where sessions live: ``<experiment_dir>/<experiment_name>/session_<id>/``.
        session_id: Reuse a given id (default: ``YYYYmmdd_HHMMSS_<6 hex>``).
        enable_pause: Read the ``p``/``q`` keys when a terminal is attached.
        verbose: Print the banner, pause and resume reports.
        on_pause: Called as ``on_pause(session_dir, resume_command)`` after the session paused.
        grace_period: Seconds after SIGTERM/SIGUSR1 before a pause that is still waiting quits now.
        import_paths: Folders saved with the session and put on the import path when it resumes
            (the script's folder and the working directory are always saved).
    """

    def __init__(
        self,
        experiment_name: str,
        experiment_dir: Union[str, Path] = "./experiments",
        session_id: Optional[str] = None,
        enable_pause: bool = True,
        verbose: bool = True,
        on_pause: Optional[Callable[[Path, str], None]] = None,
        grace_period: float = 25.0,
        import_paths: Sequence[str] = (),
    ) -> None:
        if not str(experiment_name).strip():
            raise ConfigError("The value of `experiment_name` is '', but must be a non-empty name.")
        self.experiment_name = experiment_name
        self.experiment_dir = Path(experiment_dir).expanduser().resolve()
        self.session_id = session_id or new_session_id()
        self.session_dir = self.experiment_dir / experiment_name / f"{SESSION_PREFIX}{self.session_id}"
        self.enable_pause = enable_pause
        self.verbose = verbose
        self.on_pause = on_pause
        self.grace_period = grace_period
        self.import_paths = [os.path.abspath(p) for p in import_paths]
        self.start_time = time.time()
        self.state: Optional[TuneSessionState] = None
        self._coordinator = None
        self._optimizer: Optional[ConfigDrivenOptimizer] = None
        self._trial_best: Dict[str, float] = {}
        self._last_summary = 0.0
        self._grace_timer: Optional[threading.Timer] = None
        self._early_request: Optional[Callable[[], None]] = None

    # -- public API --------------------------------------------------------------------------
    @classmethod
    def resume(cls, session_dir: Union[str, Path], allow_code_changes: bool = False) -> "TuneReflowCLI":
        """Load a paused (or interrupted) session; its directory may have moved since.

        Refuses when the search space, strategy, model or datamodule code changed since the
        session started, unless ``allow_code_changes`` (or LIGHTNING_BOHB_ALLOW_CODE_CHANGES=1).
        """
        session_dir = Path(session_dir).expanduser().resolve()
        summary = read_summary(session_dir, required=False) if session_dir.is_dir() else {}
        for change in check_unchanged(summary.get("code"), session_dir, allow_code_changes):
            print(f"⚠️ Resuming despite a code change: {change}", file=sys.stderr)
        state = TuneSessionState.load(session_dir)
        cli = cls(state.experiment_name, experiment_dir=session_dir.parent.parent, session_id=state.session_id)
        cli.session_dir = session_dir
        cli.state = state
        cli._trial_best = {row["id"]: row["best"] for row in summary.get("trials") or [] if row.get("best") is not None}
        return cli

    @property
    def pause_requested(self) -> bool:
        return self._coordinator is not None and self._coordinator.pause_pending

    @property
    def resume_command(self) -> str:
        script = self.state.script if self.state else None
        if script:
            return f"{_python_command()} {shlex.quote(script)} --resume-session {shlex.quote(str(self.session_dir))}"
        return f"{_console_command()} resume {shlex.quote(str(self.session_dir))}"

    def should_auto_pause(self, metrics: Dict[str, Any]) -> bool:
        """Override to pause the session automatically; called with every reported result."""
        return False

    def run(self, optimizer: Optional[ConfigDrivenOptimizer] = None, resume: bool = False, **kwargs: Any):
        """Run the session; returns Ray's `ResultGrid` when the search finishes.

        Raises:
            SessionPaused: The session paused (a `KeyboardInterrupt`); its message has the resume command.
        """
        if resume or (optimizer is None and self.state is not None):
            if self.state is None:
                self.state = TuneSessionState.load(self.session_dir)
            optimizer, resume = self._restore_optimizer(), True
        elif optimizer is None:
            raise ConfigError(
                "TuneReflowCLI.run() needs an optimizer for a new session; to continue one use "
                "TuneReflowCLI.resume(session_dir).run()."
            )
        else:
            self._create_session(optimizer)
        lock = SessionLock(self.session_dir)
        lock.acquire()
        signals = SignalHandlers(on_pause=self._on_pause_signal, on_quit=lambda _signum: self.quit_now())
        signals.install()  # from the lock to its release: a signal never kills the driver mid-save
        try:
            return self._run(optimizer, resume, signals, **kwargs)
        finally:
            signals.restore()
            lock.release()

    # -- controls (any thread) ---------------------------------------------------------------
    def toggle_pause(self) -> None:
        if self._coordinator is None:
            return
        if self._coordinator.pause_pending:
            self._coordinator.cancel_pause()
            self._say("▶️ Pause cancelled; continuing.")
        else:
            self.request_pause()

    def request_pause(self) -> None:
        if self._coordinator is None:
            self._early_request = self.request_pause  # before Tune starts: applied once it does
            return
        if not self._coordinator.pause_pending:
            self._coordinator.request_pause()
            self._say("⏸️ Pause requested. Waiting for trials to reach validation boundaries...")

    def quit_now(self) -> None:
        if self._coordinator is None:
            self._early_request = self.quit_now
            return
        if self._coordinator.stop_reason is None:
            self._say("⏹️ Quitting now; running trials continue later from their last checkpoints.")
            self._coordinator.quit_now()

    # -- internals ---------------------------------------------------------------------------
    def _create_session(self, optimizer: ConfigDrivenOptimizer) -> None:
        make_private_dir(self.session_dir)
        script = _user_script()
        self.state = TuneSessionState(
            session_id=self.session_id,
            experiment_name=self.experiment_name,
            search_space=optimizer.search_space,
            strategy=optimizer.strategy,
            optimization_config=optimizer.optimization_config,
            base_config=optimizer.base_config,
            base_config_source=optimizer.base_config_source,
            script=script,
            sys_path=[*self.import_paths, *(p for p in (os.path.dirname(script) if script else None, os.getcwd()) if p)],
        )

    def _restore_optimizer(self) -> ConfigDrivenOptimizer:
        state = self.state
        for path in reversed(state.sys_path):
            if os.path.isdir(path) and path not in sys.path:
                sys.path.insert(0, path)
        optimizer = ConfigDrivenOptimizer(
            state.base_config, state.search_space, state.strategy, state.optimization_config
        )
        optimizer.base_config_source = state.base_config_source
        if self.verbose:
            print(f"♻️ Resuming session: {self.session_id}")
            print("✅ All configuration restored from session state:")
            for item in ("Search space", "Strategy", "Base config", "Optimization config"):
                print(f"   • {item}: ✓")
            print("Continuing optimization...", flush=True)
        return optimizer

    def _run(self, optimizer: ConfigDrivenOptimizer, resume: bool, signals: SignalHandlers, **kwargs: Any):
        import ray

        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # this CLI owns the terminal output
        # Tune's own "interrupted ... resume with tune.run(...)" advice is wrong for a session.
        logging.getLogger("ray.tune.tune").setLevel(logging.ERROR)
        owns_ray = not ray.is_initialized()
        if owns_ray:
            # Quiet from each worker's start: Tune logs a trial's restore before the trial function runs.
            quiet = "lightning_bohb.core.trainable.quiet_trial_output"
            ray.init(include_dashboard=False, runtime_env={"worker_process_setup_hook": quiet})
        try:
            return self._run_tune(optimizer, resume, signals, **kwargs)
        finally:
            if owns_ray:
                ray_internals.end_local_autoscaler_monitor()  # saves ray.shutdown a 1 s wait
                ray.shutdown()  # last: the report and the saved state come first

    def _run_tune(self, optimizer: ConfigDrivenOptimizer, resume: bool, signals: SignalHandlers, **kwargs: Any):
        import ray

        from lightning_bohb.session.control import actor_name, create_control
        from lightning_bohb.session.coordinator import QUIT, PauseCoordinator

        self._optimizer = optimizer
        control_id = f"{self.session_id}_{os.getpid()}_{int(time.time() * 1000)}"
        control = create_control(control_id)
        self._coordinator = PauseCoordinator(
            control,
            pause_timeout=optimizer.optimization_config.pause_timeout,
            on_setup=signals.install,
            on_result=self._on_result,
            auto_pause=self.should_auto_pause,
            pause_deadline=optimizer.optimization_config.auto_pause_deadline(),
        )
        if self._early_request is not None:
            self._early_request()
        keyboard = KeyboardMonitor({"p": self.toggle_pause, "q": self.quit_now})
        self._banner(keyboard.start() if self.enable_pause else False)
        table = LiveTrialTable(self._table_snapshot)
        if self.verbose:
            table.start()
        self.state.status = RUNNING
        self.state.fingerprint = code_fingerprint(optimizer.search_space, optimizer.strategy, optimizer.base_config)
        if resume:
            self.state.resumed_at.append(now_iso())
        self._save()
        try:
            results = optimizer.run(
                output_dir=self.session_dir,
                experiment_folder=RAY_EXPERIMENT_FOLDER,
                resume=resume,
                callbacks=[self._coordinator, *kwargs.pop("callbacks", [])],
                control_name=actor_name(control_id),
                verbose=kwargs.pop("tune_verbose", 0),
                write_best=False,
            )
        except BaseException:
            self.state.status = FAILED
            self._save()
            self._say(f"❌ Optimization failed. The session can still be resumed:\n   {self.resume_command}")
            raise
        finally:
            table.stop()
            keyboard.stop()
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            ray.kill(control)
        if self._coordinator.stop_reason is None:
            optimizer.write_best_config(results, self.session_dir)
            self.state.status = COMPLETED
            self._save()
            self._say(f"🏁 Optimization complete. Best config: {self.session_dir / 'best_config.yaml'}")
            return results
        self.state.status = PAUSED
        self.state.paused_at.append(now_iso())
        self._save()
        self._report_pause(quit=self._coordinator.stop_reason == QUIT)
        if self.on_pause is not None:
            self.on_pause(self.session_dir, self.resume_command)
        raise SessionPaused(self.session_dir, self.resume_command)

    def _on_pause_signal(self, signum: int) -> None:
        import signal

        if signum == signal.SIGINT and self.pause_requested:
            self.quit_now()
            return
        self.request_pause()
        if signum != signal.SIGINT and self._grace_timer is None and math.isfinite(self.grace_period):
            self._grace_timer = threading.Timer(self.grace_period, self.quit_now)
            self._grace_timer.daemon = True
            self._grace_timer.start()

    def _table_snapshot(self):
        coordinator = self._coordinator
        if coordinator.pause_pending:
            pause_line = f"pause requested: waiting for {len(coordinator.waiting)} trials to reach validation"
        else:
            pause_line = "p: pause at next validation   q: quit now   Ctrl+C: pause"
        return coordinator.trials, dict(self._trial_best), self._optimizer.metric, pause_line

    def _on_result(self, trial, result: Dict[str, Any]) -> None:
        metric, mode = self._optimizer.metric, self._optimizer.mode
        value = result.get(metric)
        if isinstance(value, (int, float)):
            previous = self._trial_best.get(trial.trial_id)
            better = previous is None or (value < previous if mode == "min" else value > previous)
            if better:
                self._trial_best[trial.trial_id] = value
        if time.time() - self._last_summary > _SUMMARY_EVERY_S:
            self._write_summary()

    def _save(self) -> None:
        try:
            self.state.save(self.session_dir)
            self._write_summary()
        except OSError as err:
            raise SessionError(
                f"Could not save the session state in {self.session_dir}: {err.strerror or err}. "
                "The previous state file is intact (writes are atomic). Free disk space, then resume "
                f"with: {self.resume_command}"
            ) from err

    def _write_summary(self) -> None:
        from lightning_bohb.session.summary import build_summary

        self._last_summary = time.time()
        coordinator = self._coordinator
        write_summary(
            self.session_dir,
            build_summary(
                self.state,
                resume_command=self.resume_command,
                trials=coordinator.trials if coordinator else [],
                statuses_at_stop=coordinator.statuses_at_stop if coordinator else {},
                trial_best=self._trial_best,
                metric_config=self._optimizer.metric_config if self._optimizer else None,
                pause_info=coordinator.describe() if coordinator else {},
            ),
        )

    def _banner(self, keyboard: bool) -> None:
        if keyboard:
            self._say(
                "🎮 Interactive mode enabled:\n"
                "   Press 'p' to pause at next validation\n"
                "   Press 'q' to quit immediately\n"
                "   Press Ctrl+C to pause gracefully"
            )
        elif self.enable_pause:
            self._say(
                "⌨️ No terminal: keyboard controls are off. Pause with Ctrl+C, SIGTERM/SIGUSR1, or: "
                f"{_console_command()} pause {shlex.quote(str(self.session_dir))}"
            )
        self._say(f"💾 Session state saved to: {self.session_dir / STATE_FILE}")
        self._say("Running optimization...")

    def _report_pause(self, quit: bool) -> None:
        lines = ["", "✅ OPTIMIZATION PAUSED", f"📊 Session: {self.session_id}", f"💾 State saved to: {self.session_dir / STATE_FILE}"]
        if quit:
            lines.append("⚠️ Quit without waiting for validation: running trials resume from their last reported checkpoints.")
        for trial_id, epoch in self._coordinator.timed_out.items():
            where = "no checkpoint yet (restarts from scratch)" if epoch is None else f"its checkpoint of epoch {epoch}"
            lines.append(
                f"⚠️ Trial {trial_id} did not reach validation within pause_timeout; stopped at {where}: "
                "the epoch in flight is lost."
            )
        lines += ["", "📝 To resume this EXACT session with all settings, run:", f"   {self.resume_command}"]
        self._say("\n".join(lines))

    def _say(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)


def _user_script() -> Optional[str]:
    """The user's script when the session was started as ``python script.py``, else ``None``."""
    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0.endswith(".py") or not os.path.isfile(argv0):
        return None
    script = os.path.abspath(argv0)
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return None if script.startswith(package_dir + os.sep) else script


def _python_command() -> str:
    found = shutil.which("python")
    if found and os.path.realpath(found) == os.path.realpath(sys.executable):
        return "python"
    return shlex.quote(sys.executable)


def _console_command() -> str:
    found = shutil.which("lightning-bohb")
    sibling = Path(sys.executable).parent / "lightning-bohb"
    if found and sibling.exists() and os.path.realpath(found) == os.path.realpath(sibling):
        return "lightning-bohb"
    return f"{_python_command()} -m lightning_bohb"


def _install_excepthook() -> None:
    """Uncaught, `SessionPaused` ends the process with `EXIT_PAUSED` and no traceback, and a
    `LightningTuneError` (bad session, bad config) with its message and exit status 1."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, (SessionPaused, LightningTuneError)):
            if issubclass(exc_type, LightningTuneError):
                print(f"error: {exc}", file=sys.stderr)
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_PAUSED if issubclass(exc_type, SessionPaused) else 1)
        previous(exc_type, exc, tb)

    sys.excepthook = hook


_install_excepthook()  # scripts importing TuneReflowCLI get both behaviours, from their first line
