"""`ReproducibleTuneBOHB`: Ray's `TuneBOHB` whose model sees every rung once and whose draws are seeded.

Two fixes over Ray 2.60 + hpbandster 0.7.4:
- hpbandster's BOHB config generator draws its random-versus-model choice, the KDE sample index and
  its truncated-normal and categorical perturbations from numpy's GLOBAL generator; `TuneBOHB(seed=)`
  seeds only the ConfigSpace. Here the searcher owns a `numpy.random.RandomState` seeded from ``seed``
  and swaps it in around every call into hpbandster, so the draws depend on the seed alone (not on
  what else in the driver used numpy), and the generator is pickled with the searcher's state, so a
  resumed search draws what the uninterrupted one would have drawn.
- Tune does not pass a result to the searcher when the scheduler decides STOP for it (ray#21021), and
  HyperBand decides STOP for the trial that completes a rung and for every trial of a finished
  bracket: those rung results never reached the model. `observe` takes a rung result whatever the
  decision; `ResumableHyperBandForBOHB` calls it for each rung result, Tune's own call lands on it
  too, and a (trial, budget) pair is fed to the model once.
Written by hand because no library offers BOHB on Tune with either fix (ray#21021, ray#12536 are open
or closed as stale).
"""

from __future__ import annotations

import collections
import contextlib
from typing import Any, Dict, Iterator, Optional, Set, Tuple

import numpy as np
from ray.tune.search.bohb import TuneBOHB


class ReproducibleTuneBOHB(TuneBOHB):
    """`TuneBOHB` with its own seeded numpy generator and exactly-once rung observations."""

    def __init__(self, **kwargs: Any) -> None:
        """Takes `TuneBOHB`'s arguments by keyword; ``seed`` seeds the model's draws too. A searcher state
        saved by Ray's own `TuneBOHB` (a 0.1.0 session) restores over these two fields, keeping them."""
        self._numpy_state = np.random.RandomState(kwargs.get("seed"))
        self._observed: Set[Tuple[str, float]] = set()
        super().__init__(**kwargs)

    @contextlib.contextmanager
    def _own_numpy_draws(self) -> Iterator[None]:
        """numpy's global generator is this searcher's for the duration, and the caller's again after."""
        outside = np.random.get_state()
        np.random.set_state(self._numpy_state.get_state())
        try:
            yield
        finally:
            self._numpy_state.set_state(np.random.get_state())
            np.random.set_state(outside)

    def suggest(self, trial_id: str) -> Optional[Dict]:
        with self._own_numpy_draws():
            return super().suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: Dict) -> None:
        if trial_id not in self.paused:
            self.running.add(trial_id)
        self.observe(trial_id, result)

    def observe(self, trial_id: str, result: Dict) -> None:
        """Give the model this rung result (one HyperBand set ``hyperband_info.budget`` on), once."""
        budget = (result.get("hyperband_info") or {}).get("budget")
        if budget is None or trial_id not in self.trial_to_params:
            return
        if (trial_id, budget) in self._observed:
            return
        self._observed.add((trial_id, budget))
        with self._own_numpy_draws():
            self.bohber.new_result(self.to_wrapper(trial_id, result))

    def observation_counts(self) -> Dict[float, int]:
        """How many rung results the model was given, per budget (hpbandster keeps a budget's results only
        while no larger budget has a model, as the reference BOHB does)."""
        return dict(sorted(collections.Counter(budget for _, budget in self._observed).items()))
