"""Scheduler state across pause and resume (Ray saves searcher state, not scheduler state: ray#30838).

`SchedulerStateCallback` stores the scheduler's rungs and brackets with every experiment snapshot
Tune writes, and puts them back on resume before the first trial is started or any result is
processed. It also has Tune snapshot the experiment each time a trial checkpoints, so a ``kill -9``
of the driver loses at most the epoch each trial has in flight; for that the runner first calls
`lightning_bohb._ray.scheduler_hooks.capture_controller` on the scheduler.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, runtime_checkable

from ray.tune import Callback
from ray.tune.experiment import Trial

from lightning_bohb._ray.class_swap import OWN_PREFIX
from lightning_bohb._ray.scheduler_hooks import captured_controller
from lightning_bohb._ray.snapshot_journal import snapshot_experiment
from lightning_bohb.exceptions import SessionError
from lightning_bohb.log import logger

STATE_VERSION = 1


@runtime_checkable
class RepausingScheduler(Protocol):
    """A scheduler that can put back to PAUSED the trials it had paused when the session paused."""

    def repause(self, trial_ids: Iterable[str]) -> None: ...


class SchedulerStateCallback(Callback):
    """Saves and restores ``scheduler`` through Tune's callback state (``get_state``/``set_state``)."""

    def __init__(self, scheduler: Any, trust_check: Optional[Callable[[], None]] = None) -> None:
        """``trust_check`` raises (`SessionError`) when the state restored on resume must not be
        unpickled; the session runner passes its trust check (`lightning_bohb.session.trust`)."""
        self.scheduler = scheduler
        self.trust_check = trust_check
        self._trials: List[Trial] = []
        self._pending: Optional[Dict[str, Any]] = None

    def get_state(self) -> Optional[Dict[str, Any]]:
        import ray

        return {
            "version": STATE_VERSION,
            "ray": ray.__version__,
            "scheduler": type(self.scheduler).__qualname__,
            "blob": dump_scheduler(self.scheduler),
            "paused": [t.trial_id for t in self._trials if t.status == Trial.PAUSED],
        }

    def set_state(self, state: Dict[str, Any]) -> None:
        import ray

        if self.trust_check is not None:
            self.trust_check()  # before the blob is kept for unpickling
        problem = _state_problem(state)
        if problem:
            raise SessionError(f"The scheduler state in the session's Tune experiment is corrupt ({problem}); it was not restored.")
        if state.get("version", 0) > STATE_VERSION:
            raise SessionError(
                f"The scheduler state was saved by a newer lightning_bohb (state version {state.get('version')}, "
                f"this one reads {STATE_VERSION}). Upgrade: pip install -U lightning-bohb"
            )
        if state.get("scheduler") != type(self.scheduler).__qualname__:
            logger.warning(
                "Scheduler state is for %s, not %s; the scheduler starts fresh.",
                state.get("scheduler"),
                type(self.scheduler).__qualname__,
            )
            return
        if state.get("ray") != ray.__version__:
            logger.warning(
                "The scheduler state was saved with Ray %s and is restored with Ray %s; if its format "
                "changed, the rungs and brackets may not come back as they were.",
                state.get("ray"),
                ray.__version__,
            )
        self._pending = state

    def on_step_begin(self, iteration: int, trials: List[Trial], **info: Any) -> None:
        self._trials = trials
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        load_scheduler(self.scheduler, state["blob"], trials)
        if isinstance(self.scheduler, RepausingScheduler):
            self.scheduler.repause(state.get("paused", []))

    def on_step_end(self, iteration: int, trials: List[Trial], **info: Any) -> None:
        self._trials = trials

    def on_trial_save(self, iteration: int, trials: List[Trial], trial: Trial, **info: Any) -> None:
        self._trials = trials
        snapshot_experiment(self.scheduler)


def dump_scheduler(scheduler) -> bytes:
    """Pickle a trial scheduler's state, with each `Trial` it holds replaced by its id."""
    import io

    import cloudpickle
    from ray.tune.execution.tune_controller import TrialRunnerWrapper, TuneController
    from ray.tune.experiment import Trial

    class _TrialIdPickler(cloudpickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Trial):
                return ("trial", obj.trial_id)
            if obj is scheduler:  # bound methods inside the state point back at it
                return ("scheduler", None)
            if isinstance(obj, (TuneController, TrialRunnerWrapper)):
                return ("controller", None)
            return None

    state = {k: v for k, v in scheduler.__dict__.items() if not k.startswith(OWN_PREFIX)}
    buffer = io.BytesIO()
    _TrialIdPickler(buffer).dump(state)
    return buffer.getvalue()


def load_scheduler(scheduler, blob: bytes, trials) -> None:
    """Restore state from `dump_scheduler` into ``scheduler``, mapping trial ids to the live trials."""
    import io
    import pickle

    by_id = {trial.trial_id: trial for trial in trials}

    class _TrialIdUnpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            kind, trial_id = pid
            if kind == "scheduler":
                return scheduler
            if kind == "controller":
                return captured_controller(scheduler)
            if kind != "trial" or trial_id not in by_id:
                raise pickle.UnpicklingError(f"scheduler state names trial {trial_id!r}, which this run does not have")
            return by_id[trial_id]

    scheduler.__dict__.update(_TrialIdUnpickler(io.BytesIO(blob)).load())


def _state_problem(state: Any) -> Optional[str]:
    """What is wrong with a saved state's shape (it comes from a file), else ``None``."""
    if not isinstance(state, dict):
        return f"a {type(state).__name__}, not a mapping"
    kinds = {"version": int, "blob": bytes, "paused": list, "scheduler": str}
    for key, kind in kinds.items():
        if key in state and (not isinstance(state[key], kind) or isinstance(state[key], bool)):
            return f"`{key}` is {type(state[key]).__name__}, not {kind.__name__}"
    if "blob" not in state:
        return "no `blob`"
    return None
