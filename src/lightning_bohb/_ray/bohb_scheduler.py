"""`ResumableHyperBandForBOHB`: Ray's `HyperBandForBOHB` with HyperBand's brackets, that comes back from a pause as it left.

HyperBand as the paper (Li et al. 2018) and hpbandster schedule it, at any concurrency (ray#12536):
- A bracket that has received its ``n`` trials takes no more; the next trial opens the next bracket of
  the iteration. Ray's `_Bracket.filled()` compares the trials still live with the current rung's
  size, so a finished bracket (0 live, size 1) was never full and took every later trial at its last
  rung (``max_t`` epochs, no early stopping): at one trial at a time, every trial after the first bracket.
- Rung ``i`` of a bracket of ``n`` trials keeps ``floor(n / eta**i)`` of them (at least one), as the paper
  and hpbandster do; Ray rounded up.
- Every rung result reaches the searcher (`ReproducibleTuneBOHB.observe`), whatever this scheduler
  decides for the trial: Tune passes no STOP result on (ray#21021).

Two fixes for pause and resume (ray#39900):
- On resume Tune makes every unfinished trial PENDING, also those HyperBand had PAUSED at a rung
  until the rest of their bracket caught up; started early, they break the bracket.
  `SchedulerStateCallback` restores the brackets and calls `repause` with those trials; this
  scheduler returns them to PAUSED before it chooses the next trial to run.
- A PAUSED trial that the bracket stops is snapshotted as still PAUSED; it is marked for the next
  snapshot here, so it stays finished after a resume.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandForBOHB
from ray.tune.schedulers.hyperband import _Bracket

from lightning_bohb._ray.tune_controller import mark_trial_for_snapshot, set_trial_status


class _PaperBracket(_Bracket):
    """A HyperBand bracket that is full once it has received its ``n`` trials, and keeps
    ``floor(n / eta**i)`` of them at rung ``i``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._s: int = kwargs["s"]

    def filled(self) -> bool:
        return len(self._all_trials) >= self._n0

    def successive_halving(self, metric: str, metric_op: float) -> Tuple[List[Trial], List[Trial]]:
        """Ray's halving, with the rung's size rounded down (Ray rounds ``n / eta`` up at each rung)."""
        self._halves -= 1
        self._n = max(1, int(self._n0 // self._eta ** (self._s - self._halves)))
        self._r = int(min(self._r * self._eta, self._max_t_attr))
        self._cumul_r = self._r
        ranked = sorted(self._live_trials, key=lambda t: metric_op * self._live_trials[t][metric])
        return ranked[-self._n :], ranked[: -self._n]


class ResumableHyperBandForBOHB(HyperBandForBOHB):
    """`HyperBandForBOHB` that implements `lightning_bohb._ray.scheduler_state.RepausingScheduler`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._to_repause: Set[str] = set()

    def _create_bracket(self, s: int) -> _Bracket:
        return _PaperBracket(
            time_attr=self._time_attr,
            max_trials=self._get_n0(s),
            init_t_attr=self._get_r0(s),
            max_t_attr=self._max_t_attr,
            eta=self._eta,
            s=s,
            stop_last_trials=self._stop_last_trials,
        )

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: Dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        observe = getattr(getattr(tune_controller.search_alg, "searcher", None), "observe", None)
        if observe is not None and "budget" in result.get("hyperband_info", {}):
            observe(trial.trial_id, result)  # whatever the decision: Tune passes no STOP result on
        return decision

    def repause(self, trial_ids: Iterable[str]) -> None:
        """Return these trials to PAUSED (they were paused at a rung when the session paused)."""
        self._to_repause.update(trial_ids)

    def apply_repause(self, tune_controller: Any) -> None:
        """Set the trials named by `repause` that Tune made PENDING back to PAUSED."""
        if not self._to_repause:
            return
        for trial in tune_controller.get_trials():
            if trial.trial_id in self._to_repause and trial.status == Trial.PENDING:
                set_trial_status(tune_controller, trial, Trial.PAUSED)
        self._to_repause.clear()

    def choose_trial_to_run(self, tune_controller: Any, allow_recurse: bool = True) -> Optional[Trial]:
        self.apply_repause(tune_controller)
        return super().choose_trial_to_run(tune_controller, allow_recurse)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_remove(tune_controller, trial)
        mark_trial_for_snapshot(tune_controller, trial)
