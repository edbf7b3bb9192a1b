"""`TuneSession`: create, resume and run a search as a session that pauses and resumes exactly.

The runner owns everything a session needs besides a terminal: its folder and saved state, the
lock, the one `PauseState`, the signal handlers, ``ray.init``/shutdown, the pause channel, the
coordinator and the Ray patches that make a session resumable. It reports through a
`SessionListener` and never prints; `lightning_bohb.cli.tune_reflow.TuneReflowCLI` is the terminal
front end over it.

Signals, in order: the runner installs its handlers when it takes the lock (a signal never kills
the driver mid-save); ``tune.run`` then installs its own SIGINT/SIGUSR1 handler; in the
coordinator's ``setup`` (Tune's loop not started yet) the runner takes Tune's interrupt event from
that handler (`_ray.tune_run.tune_interrupt_event`) and installs its handlers again. A signal that
reaches Tune's handler in between ends the loop before any trial starts: the session is then
PAUSED, never COMPLETED (COMPLETED needs a loop that ran to its end).

Why this module is longer than the others (about 650 lines): `TuneSession` is the one place where a run's
events are put in order (lock, state, signals, Ray, control actor, coordinator, Tune, summary, pause).
What it orchestrates lives elsewhere, one concept a module: where the session lives
(`lightning_bohb.session.backend`), its lock (`lightning_bohb.session.lock`), its state, a resume's new
shape (`lightning_bohb.session.reshape`), the recorded import path (`lightning_bohb.session.script`) and
Tune's hidden advice (`lightning_bohb.session.tune_noise`). Splitting the order itself would scatter it.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from lightning_bohb._ray.ray_start import RayStart
from lightning_bohb.core.best_trial import better
from lightning_bohb.core.optimizer import ConfigDrivenOptimizer
from lightning_bohb.exceptions import ConfigError, SessionError, SessionLockLost, SessionPaused
from lightning_bohb.pause.signals import SignalHandlers
from lightning_bohb.pause.state import PauseState, StopReason, take_pause_within
from lightning_bohb.session.backend import SessionBackend, console_command, open_session, session_at
from lightning_bohb.session.events import PauseReport, SessionListener
from lightning_bohb.session.fingerprint import check_sources, check_unchanged, code_fingerprint
from lightning_bohb.session.lock import OwnerLease
from lightning_bohb.session.reshape import reshape_config
from lightning_bohb.session.script import session_import_path, user_script
from lightning_bohb.session.state import (
    SessionStatus,
    TuneSessionState,
    check_session_id,
    check_tune_state,
    new_session_id,
    now_iso,
    read_summary,
    write_summary,
)
from lightning_bohb.session.summary import build_summary
from lightning_bohb.session.tune_noise import tune_advice_hidden
from lightning_bohb.utils.imports import extend_import_path
from lightning_bohb.utils.layout import (
    BEST_CONFIG_FILE,
    CONTROL_FILE,
    PAUSE_WITHIN_FILE,
    STATE_FILE,
    SUMMARY_FILE,
    TUNE_FOLDER,
)

logger = logging.getLogger(__name__)

_SUMMARY_EVERY_S = 2.0
_STATUS_SUMMARY_EVERY_S = 0.5
_SUMMARY_SHARE = 19
"""At most 1/20 of the driver's time goes to rewriting the summary (every trial's row): a summary that
takes long to write (thousands of trials, a store far away) is rewritten less often."""


class TuneSession:
    """One session: ``<experiment_dir>/<experiment_name>/session_<id>/``.

    Args:
        experiment_name: Folder name under ``experiment_dir``; ``None`` takes the optimizer's.
        experiment_dir: Where experiments live; ``None`` takes the optimizer's.
        session_id: Reuse a given id (default: ``YYYYmmdd_HHMMSS_<6 hex>``).
        grace_period: Seconds after SIGTERM/SIGUSR1 before a pause that is still waiting quits now.
        import_paths: Folders saved with the session and put on the import path when it resumes, in the
            driver and in Ray's workers (the script's folder, the working directory and the folders of
            ``PYTHONPATH`` are always saved: `session_import_path`).
        listener: Receives the session's events.
        auto_pause: Called with every reported result; True pauses the session.
        force: Take the session's lock even if its record still looks live (a driver on another host
            whose heartbeat is fresh), after logging whose it was (``lightning-bohb resume --force``).
    """

    def __init__(
        self,
        experiment_name: Optional[str] = None,
        experiment_dir: Optional[Union[str, Path]] = None,
        session_id: Optional[str] = None,
        grace_period: float = 25.0,
        import_paths: Sequence[str] = (),
        listener: Optional[SessionListener] = None,
        auto_pause: Callable[[Dict[str, Any]], bool] = lambda metrics: False,
        force: bool = False,
    ) -> None:
        if experiment_name is not None and not str(experiment_name).strip():
            raise ConfigError("The value of `experiment_name` is '', but must be a non-empty name.")
        self.experiment_name = None if experiment_name is None else str(experiment_name)
        self.experiment_dir = None if experiment_dir is None else str(experiment_dir)
        self.session_id = check_session_id(session_id) if session_id is not None else new_session_id()
        self.import_paths = [os.path.abspath(p) for p in import_paths]
        self.listener = listener or SessionListener()
        self.auto_pause = auto_pause
        self.force = force
        self.pause = PauseState(grace_period)
        self.state: Optional[TuneSessionState] = None
        self.optimizer: Optional[ConfigDrivenOptimizer] = None
        self.coordinator: Any = None
        self.trial_best: Dict[str, float] = {}
        self._backend: Optional[SessionBackend] = None
        self.trusted = False
        """Whether `resume` was told to trust the session folder (``trust``); `check_trusted` checks again with it."""
        self.code_changes: List[str] = []
        """Code changes a resume was allowed to proceed despite (``allow_code_changes``)."""
        self._restored: Optional[ConfigDrivenOptimizer] = None
        """The optimizer `resume` rebuilt from the state (its config parsed), for `run`."""
        self._lock: Optional[OwnerLease] = None
        """The lock or lease `resume` took, until `run` takes it over."""
        self._running_lock: Optional[OwnerLease] = None
        self._last_summary = 0.0
        self._summary_stale = False
        self._summary_took = 0.0

    # -- where it lives ----------------------------------------------------------------------
    @property
    def backend(self) -> SessionBackend:
        """Where the session lives (`lightning_bohb.session.backend`): ``<experiment_dir>/<experiment_name>/session_<id>``."""
        if self._backend is None:
            self._backend = session_at(self.experiment_dir, self.experiment_name, self.session_id)
        return self._backend

    @property
    def session_dir(self) -> Path:
        """The session's folder; for a session in object storage, the driver's working copy of it."""
        return self.backend.folder

    @property
    def location(self) -> str:
        """Where the session lives, as the user names it: its folder, or its URI."""
        return self.backend.location

    def location_of(self, name: str) -> str:
        """Where the session's file ``name`` lives, as the user names it."""
        return self.backend.file(name)

    @property
    def resume_command(self) -> str:
        return self.backend.resume_command(self.state.script if self.state else None)

    @property
    def pause_command(self) -> str:
        return self.backend.pause_command()

    def _push(self, *names: str, required: bool = True) -> None:
        """Make the session files ``names`` the session's where it lives (a store), in this order.

        With ``required=False`` a store out of reach is logged, not raised: the file is put again with
        the next change (a summary, the control record), and the search goes on.
        """
        if self._lock_loss() is not None:  # lost to another driver: nothing more is written
            return
        try:
            self.backend.push(*names)
        except (OSError, SessionError) as err:
            if required:
                raise
            logger.warning("Could not put %s into %s (the next change tries again): %s", ", ".join(names), self.location, err)

    # -- create / resume ---------------------------------------------------------------------
    @classmethod
    def resume(
        cls,
        session_dir: Union[str, Path],
        allow_code_changes: bool = False,
        trust: bool = False,
        num_samples: Optional[int] = None,
        max_concurrent_trials: Optional[int] = None,
        cpus_per_trial: Optional[float] = None,
        gpus_per_trial: Optional[float] = None,
        **kwargs: Any,
    ) -> "TuneSession":
        """Load a paused (or interrupted) session; its directory may have moved since.

        ``num_samples``, ``max_concurrent_trials``, ``cpus_per_trial`` and ``gpus_per_trial`` give the
        search a new budget or shape (`reshape_config`): recorded in the session state when it runs,
        so later resumes keep them.

        Refuses, before anything is unpickled, a session folder that another user owns or could
        have written to (`lightning_bohb.session.trust`), unless ``trust`` (or LIGHTNING_BOHB_TRUST=1).
        Then, with the session's recorded import path in place (as its trials will have it), refuses
        when the search space, strategy, model or datamodule code changed since the session started,
        unless ``allow_code_changes`` (or LIGHTNING_BOHB_ALLOW_CODE_CHANGES=1). Nothing named by the
        YAML summary is imported.
        """
        shape: Dict[str, Any] = dict(num_samples=num_samples, max_concurrent_trials=max_concurrent_trials)
        shape.update(cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
        backend = open_session(session_dir, resolve=True)
        backend.check_resumable(trust)  # before anything is written, read back or unpickled
        # A second driver stops here, before it imports the user's code or restores anything; the
        # lock is held (with a heartbeat) until `run` ends.
        lock = backend.lease()
        lock.acquire(force=bool(kwargs.get("force", False)))
        try:
            backend.fetch()
            session = cls._resumed(backend, allow_code_changes, trust, shape, **kwargs)
            backend.publish_fetched()  # the merged snapshot delta: Ray restores from where the session lives
        except BaseException:
            lock.release()
            backend.close()
            raise
        session._lock = lock
        return session

    @classmethod
    def _resumed(
        cls, backend: SessionBackend, allow_code_changes: bool, trust: bool, shape: Dict[str, Any], **kwargs: Any
    ) -> "TuneSession":
        session_dir = backend.folder
        state = TuneSessionState.load(session_dir, trust=trust)
        extend_import_path(state.sys_path)  # the session's import path, as its trials will have it
        # From the files, before the user's code (torch, Lightning) is imported: a class gone or changed fails at once.
        check_sources(state.fingerprint, session_dir, allow_code_changes, state.sys_path)
        from lightning_bohb._ray.snapshot_journal import apply_snapshot_delta

        apply_snapshot_delta(session_dir / TUNE_FOLDER)  # what the driver saved since its last full snapshot
        check_tune_state(session_dir, TUNE_FOLDER)  # what Ray would fail on once started
        try:
            optimizer = _optimizer_of(state)  # parses the config as the trials will: the classes they run
        except ConfigError as err:
            raise SessionError(
                f"Session {session_dir} cannot be resumed: {err} (The session's import path: "
                f"{'; '.join(state.sys_path) or '(none recorded)'}.)"
            ) from None
        changes = check_unchanged(
            state.fingerprint,
            session_dir,
            allow_code_changes,
            state.search_space,
            state.strategy,
            state.base_config,
            optimizer.user_classes(),
            state.sys_path,
        )
        summary = read_summary(session_dir, required=False)
        session = cls(state.experiment_name, experiment_dir=backend.experiment_dir, session_id=state.session_id, **kwargs)
        session._backend = backend
        session.state = state
        session._restored = optimizer
        session.code_changes = changes
        session.trusted = trust
        session.reshape(**shape)
        session.trial_best = {
            row["id"]: row["best"]
            for row in summary.get("trials") or []
            if isinstance(row, dict) and isinstance(row.get("id"), str) and _is_number(row.get("best"))
        }
        return session

    def reshape(self, fix: str = "Resume with --num-samples {created} or more", **shape: Any) -> None:
        """Give a resumed session, before it runs, a new ``num_samples``, ``max_concurrent_trials``,
        ``cpus_per_trial`` or ``gpus_per_trial`` (None: unchanged); see `reshape_config`. Saved in the
        session state when the run starts, so later resumes keep it."""
        if all(value is None for value in shape.values()):
            return
        state = self._require_state()
        config = reshape_config(state, self.session_dir, fix, **shape)
        state.optimization_config = config
        if self._restored is not None:
            self._restored.optimization_config = config

    def close(self) -> None:
        """Give up the lock `resume` took, for a resumed session that will not be run after all
        (`run` gives it up itself when it ends; a process that exits gives it up too)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._backend is not None:
            self._backend.close()

    def check_trusted(self) -> None:
        """The trust check of `resume` again: Ray loads the experiment and scheduler states later."""
        self.backend.check_trusted(self.trusted)

    def _create(self, optimizer: ConfigDrivenOptimizer) -> ConfigDrivenOptimizer:
        config = optimizer.optimization_config.with_location(self.experiment_name, self.experiment_dir)
        optimizer.optimization_config = config
        self._backend = backend = session_at(config.experiment_dir, config.experiment_name, self.session_id)
        self.experiment_name, self.experiment_dir = backend.experiment_name, backend.experiment_dir
        backend.create()
        script = user_script()
        self.state = TuneSessionState(
            session_id=self.session_id,
            experiment_name=self.experiment_name,
            search_space=optimizer.search_space,
            strategy=optimizer.strategy,
            optimization_config=config,
            base_config=optimizer.base_config,
            base_config_source=optimizer.base_config_source,
            script=script,
            sys_path=session_import_path(self.import_paths, script),
            cli_arguments=optimizer.cli_arguments,
        )
        return optimizer

    def _restored_optimizer(self) -> ConfigDrivenOptimizer:
        state = self._require_state()
        extend_import_path(state.sys_path)
        optimizer = self._restored if self._restored is not None else _optimizer_of(state)
        self.listener.on_resume(self)
        return optimizer

    def _require_state(self) -> TuneSessionState:
        if self.state is None:
            self.state = TuneSessionState.load(self.session_dir)
        return self.state

    # -- controls (any thread, also from a signal handler) -----------------------------------
    def request_pause(self) -> None:
        if self.pause.request_pause():
            self.listener.on_pause_requested(self)

    def cancel_pause(self) -> None:
        if self.pause.cancel_pause():
            self.listener.on_pause_cancelled(self)

    def toggle_pause(self) -> None:
        if self.pause.pause_pending:
            self.cancel_pause()
        else:
            self.request_pause()

    def quit_now(self) -> None:
        if self.pause.quit():
            self.listener.on_quit_requested(self)

    def on_pause_signal(self, signum: int) -> None:
        """SIGINT pauses (a second one quits); SIGTERM/SIGUSR1 pause and start the grace timer.

        The grace period is the pause's deadline: a trial whose epoch end is not expected by then
        checkpoints at a training step. ``lightning-bohb pause --within S`` (SIGUSR1) sets its own.
        """
        if signum == signal.SIGINT and self.pause.pause_pending:
            self.quit_now()  # a second Ctrl+C
            return
        deadline = take_pause_within(self.session_dir) if signum == signal.SIGUSR1 else None
        self.request_pause()
        if deadline is not None:
            self.pause.request_pause(deadline=deadline)  # also when a grace timer already runs
        if signum != signal.SIGINT:
            within = None if deadline is None else max(0.0, deadline - time.time())
            self.pause.start_grace(self.quit_now, within=within)  # a scheduler's SIGTERM: the node goes away after its grace period

    def _on_remote_request(self, action: str) -> None:
        """A request from `lightning-bohb pause` through Ray: as its signal would on this host."""
        if action != "quit":  # `pause --within` put its deadline where the session lives
            try:
                self.backend.take(PAUSE_WITHIN_FILE)
            except (OSError, SessionError) as err:
                logger.warning("Could not read the pause deadline from %s: %s", self.location, err)
        if action == "quit":
            self.quit_now()  # SIGUSR2: now, keeping the last checkpoints
        else:
            self.on_pause_signal(signal.SIGUSR1)

    # -- run ---------------------------------------------------------------------------------
    def run(
        self, optimizer: Optional[ConfigDrivenOptimizer] = None, resume: bool = False, *, callbacks: Sequence[Any] = (),
        tune_verbose: int = 0,
    ):
        """Run the session; returns Ray's `ResultGrid` when the search finishes.

        ``callbacks`` are Ray Tune callbacks added to the session's own; ``tune_verbose`` is Tune's ``verbose``.

        Raises:
            SessionPaused: The session paused (a `KeyboardInterrupt`); its message has the resume command.
        """
        if resume or (optimizer is None and self.state is not None):
            self._require_state()
            resume = True
        elif optimizer is None:
            raise ConfigError(
                "TuneReflowCLI.run() needs an optimizer for a new session; to continue one use "
                "TuneReflowCLI.resume(session_dir).run()."
            )
        else:
            optimizer = self._create(optimizer)
        # Held (with a heartbeat) until the end of the run; a second driver stops here, before it
        # reports, restores or writes anything.
        lock = self._lock if self._lock is not None and self._lock.held else self.backend.lease()
        if not lock.held:
            lock.acquire(force=self.force)
        self._lock = None  # released at the end of this run; a later run takes it again
        self._running_lock = lock
        ray_start: Optional[RayStart] = None
        try:
            if not resume and self._exists():  # a chosen session id met an existing session
                raise SessionError(
                    f"Session {self.location} already exists; a new session would overwrite it. Resume it with: "
                    f"{console_command()} resume {shlex.quote(self.location)} (or 'lightning-bohb run STUDY "
                    "--resume-if-exists'), or start a new one with another session id."
                )
            ray_start = _start_ray(self._require_state().sys_path)  # Ray comes up while the session sets itself up (`_run_tune`)
            if resume:
                optimizer = self._restored_optimizer()
            assert optimizer is not None
            signals = SignalHandlers(on_pause=self.on_pause_signal, on_quit=lambda _signum: self.quit_now())
            signals.install()  # from here to the lock's release: a signal never kills the driver mid-save
            try:
                return self._run_with_ray(optimizer, resume, signals, ray_start, list(callbacks), tune_verbose)
            finally:
                ray_start.shutdown()  # last: the report and the saved state come first
                signals.restore()
                self.pause.detach()
        finally:
            if ray_start is not None:
                ray_start.shutdown()  # refused before the search: Ray's start is undone (a no-op after the search)
            lock.release()
            self.backend.close()  # everything in a store's working copy is in the store

    def _exists(self) -> bool:
        return self.backend.is_session()

    def _run_with_ray(
        self, optimizer: ConfigDrivenOptimizer, resume: bool, signals: SignalHandlers, ray_start: RayStart, callbacks: List[Any],
        verbose: int,
    ):
        with tune_advice_hidden(lambda: self.coordinator):
            return self._run_tune(optimizer, resume, signals, ray_start, callbacks, verbose)

    def _run_tune(
        self, optimizer: ConfigDrivenOptimizer, resume: bool, signals: SignalHandlers, ray_start: RayStart, callbacks: List[Any],
        verbose: int,
    ):
        import ray

        from lightning_bohb._ray.scheduler_hooks import capture_controller, new_trials_where_the_experiment_is
        from lightning_bohb._ray.scheduler_state import SchedulerStateCallback
        from lightning_bohb._ray.search_budget import reshape_on_restore
        from lightning_bohb._ray.trial_resources import TrialResourcesCallback
        from lightning_bohb._ray.tune_run import tag_callbacks_without_imports
        from lightning_bohb.core.retention import StoppedTrialCheckpoints
        from lightning_bohb.pause.channel import ChannelHandle, actor_name, create_control, new_key
        from lightning_bohb.pause.coordinator import PauseCoordinator
        from lightning_bohb.pause.remote import RemoteControlServer

        state = self._require_state()
        self.optimizer = optimizer
        # While Ray comes up (`RayStart`): what needs no Ray.
        search_alg, scheduler = optimizer.build_search()
        fingerprint = code_fingerprint(optimizer.search_space, optimizer.strategy, optimizer.base_config, optimizer.user_classes())
        tag_callbacks_without_imports()
        ray_start.wait()
        control_id = f"{self.session_id}_{os.getpid()}_{int(time.time() * 1000)}"
        key = new_key()  # the driver's and its trials' calls that change the control actor carry it
        control = create_control(control_id, key)
        channel = ChannelHandle(control, key)
        self.pause.attach(channel)
        self.coordinator = coordinator = PauseCoordinator(
            self.pause,
            channel,
            pause_timeout=optimizer.optimization_config.pause_timeout,
            on_setup=signals.install,  # Tune installed its own SIGINT/SIGUSR1 handlers: take them back
            on_result=self._on_result,
            auto_pause=self.auto_pause,
            pause_deadline=optimizer.optimization_config.auto_pause_deadline(),
            on_trial_status=self._on_trial_status,
            on_step=self._on_step,
            check_owned=self._check_owned,
            session_dir=self.session_dir,
        )
        capture_controller(scheduler, on_capture=lambda controller: _on_controller(controller, self._check_owned))
        new_trials_where_the_experiment_is(scheduler)  # a session resumed from another folder
        coordinator.control_trials(scheduler, search_alg, optimizer.optimization_config.max_concurrent_trials or 0)
        shape_callbacks: List[Any] = []
        if resume:  # the budget and shape recorded in the state, also when `resume` was given new ones
            config = optimizer.optimization_config
            search_alg = reshape_on_restore(search_alg, config.num_samples, config.max_concurrent_trials or 0)
            shape_callbacks.append(TrialResourcesCallback(optimizer.trial_resources()))  # one bundle per DDP rank
        state.status = SessionStatus.RUNNING
        state.fingerprint = fingerprint
        if resume:
            state.resumed_at.append(now_iso())
        self._save()
        remote = RemoteControlServer(
            self.session_dir, self.session_id, self._on_remote_request, control, actor_name(control_id), key,
            on_open=lambda: self._push(CONTROL_FILE, required=False),
        )
        remote.start()  # `lightning-bohb pause` from any node of the cluster (pause/remote.py), once its actor is up
        self.listener.on_start(self)
        try:
            results = optimizer.run(
                output_dir=self.location,  # a store's URI: Tune writes the experiment there itself
                experiment_folder=TUNE_FOLDER,
                resume=resume,
                # Tune restores each callback's state by its place in this list: callbacks only a
                # resume adds come last, after every callback whose state a snapshot holds.
                callbacks=[
                    SchedulerStateCallback(scheduler, trust_check=self.check_trusted),
                    coordinator,
                    StoppedTrialCheckpoints.for_session(optimizer, coordinator, self.trial_best),
                    *callbacks,
                    *shape_callbacks,
                ],
                control_name=actor_name(control_id),
                control_key=key,
                verbose=verbose,
                write_best=False,
                search=(search_alg, scheduler),
                storage_filesystem=self.backend.tune_filesystem(),
            )
            # Renewed just now, or lost: a driver cut off from its store (its trials ended on the outage) stops here.
            self._check_owned(confirm=True)  # lost at the very end: no best config, no state is written
        except BaseException as caught:
            err = self._as_lock_loss(caught)
            state.status = SessionStatus.FAILED
            self._save()
            self.listener.on_stop(self)
            self.listener.on_failed(self, err)
            if err is caught:
                raise
            raise err from caught
        finally:
            remote.stop(remove_file=self._lock_loss() is None)  # a lost session's control file may be its new owner's
            ray.kill(control)
            self._push(CONTROL_FILE, required=False)  # gone with the control actor
        self.listener.on_stop(self)
        if coordinator.stop_reason is None and not coordinator.interrupted:
            best = optimizer.write_best_config(results, self.session_dir)
            self._push(BEST_CONFIG_FILE)
            state.status = SessionStatus.COMPLETED
            self._save()
            self.listener.on_completed(self, None if best is None else Path(best))
            return results
        # Ended early: by a pause, a quit, or an interrupt that reached Tune's own handler before
        # ours were back (then nothing has started, and nothing is lost).
        state.status = SessionStatus.PAUSED
        state.paused_at.append(now_iso())
        self._save()
        self.listener.on_paused(self, PauseReport(
            quit=coordinator.stop_reason != StopReason.PAUSED,
            timed_out=dict(coordinator.timed_out),
            epoch_end_only=dict(coordinator.epoch_end_only),
        ))
        raise SessionPaused(self.backend.where, self.resume_command)

    def _lock_loss(self, confirm: bool = False) -> Optional[str]:
        """Why this driver no longer holds the lock or lease of its running session; None while it does
        (with ``confirm``, once renewed: `OwnerLease.loss`)."""
        lock = self._running_lock
        return None if lock is None else lock.loss(confirm)

    def _as_lock_loss(self, err: BaseException) -> BaseException:
        """``err``, or the `SessionLockLost` behind it once the lock is lost: Tune reports what a callback
        raised (the ownership check before a snapshot) as its own `TuneError`."""
        if isinstance(err, SessionLockLost) or self._lock_loss() is None:
            return err
        try:
            self._check_owned()
        except SessionLockLost as lost:
            return lost
        return err

    def _check_owned(self, confirm: bool = False) -> None:
        """`SessionLockLost` once the lock or lease is lost: the run ends at once and writes nothing more."""
        why = self._lock_loss(confirm)
        if why is not None:
            raise SessionLockLost(
                f"This driver stopped: {why}. It wrote nothing into session {self.location} since; its trials stopped at "
                f"their last checkpoints. See who runs it: {console_command()} status {shlex.quote(self.location)}"
            )

    # -- progress ----------------------------------------------------------------------------
    def _on_result(self, trial: Any, result: Dict[str, Any]) -> None:
        optimizer = self.optimizer
        value = result.get(optimizer.metric) if optimizer else None
        if optimizer and better(value, self.trial_best.get(trial.trial_id), optimizer.mode):
            self.trial_best[trial.trial_id] = value
        self.listener.on_result(self, trial, result)
        if time.time() - self._last_summary > max(_SUMMARY_EVERY_S, _SUMMARY_SHARE * self._summary_took):
            self._write_summary(required=False)

    def _on_trial_status(self, trial: Any, previous: Optional[str], status: str) -> None:
        self.listener.on_trial_status(self, trial, previous, status)
        self._summary_stale = True

    def _on_step(self) -> None:
        # Readers of the session files see a status change within a fraction of a second; written
        # at once per change, the summary (every trial's row) made a session's cost grow with the
        # square of its trials.
        if self._summary_stale and time.time() - self._last_summary >= max(_STATUS_SUMMARY_EVERY_S, _SUMMARY_SHARE * self._summary_took):
            self._write_summary(required=False)

    def _save(self) -> None:
        if self._lock_loss() is not None:  # lost to another driver: nothing more is written
            return
        state = self._require_state()
        try:
            state.save(self.session_dir)
            self._push(STATE_FILE)  # before the summary that describes it
            self._write_summary()
        except OSError as err:
            raise SessionError(
                f"Could not save the session state in {self.location}: {err.strerror or err}. "
                "The previous state file is intact (writes are atomic). Free disk space, then resume "
                f"with: {self.resume_command}"
            ) from err

    def _write_summary(self, required: bool = True) -> None:
        """Rewrite the summary; with ``required=False`` (the periodic rewrites during a search), a store out
        of reach is logged and the summary put again at the next rewrite."""
        if self._lock_loss() is not None:  # lost to another driver: nothing more is written
            return
        started = self._last_summary = time.time()
        self._summary_stale = False
        coordinator = self.coordinator
        write_summary(
            self.session_dir,
            build_summary(
                self._require_state(),
                resume_command=self.resume_command,
                trials=coordinator.trials if coordinator else [],
                status_of=coordinator.status_of if coordinator else (lambda trial: trial.status),
                trial_best=self.trial_best,
                metric_config=self.optimizer.metric_config if self.optimizer else None,
                pause_info=coordinator.describe() if coordinator else {},
            ),
        )
        self._push(SUMMARY_FILE, required=required)
        self._summary_took = time.time() - started


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _start_ray(import_path: Sequence[str]) -> RayStart:
    # This session reports progress itself: no experiment-sync warnings, no Tune status tables.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    return RayStart(import_path)


def _optimizer_of(state: TuneSessionState) -> ConfigDrivenOptimizer:
    """The session's optimizer, rebuilt from its saved state (the config is parsed again, as trials do)."""
    optimizer = ConfigDrivenOptimizer(
        state.base_config,
        state.search_space,
        state.strategy,
        state.optimization_config,
        **getattr(state, "cli_arguments", {}),
    )
    optimizer.base_config_source = state.base_config_source
    return optimizer


def _on_controller(controller: Any, check_owned: Callable[[], None]) -> None:
    """What the session changes in Tune's controller once it is known (before any trial runs); ``check_owned``
    raises before any snapshot is written once the driver has lost its session."""
    from lightning_bohb._ray.snapshot_journal import publish_snapshots_last
    from lightning_bohb._ray.tune_controller import register_step_checkpoints
    from lightning_bohb.pause.state import STEP_CHECKPOINT

    publish_snapshots_last(controller, before_write=check_owned)
    register_step_checkpoints(controller, STEP_CHECKPOINT)  # a pause's step checkpoint is no epoch result
