"""A trial's other DDP ranks (`core/distributed.py`) with a real local Ray: every wait on them is bounded."""

import threading
import time

import pytest

from lightning_bohb.core import distributed
from lightning_bohb.core.distributed import RankError, RankGroup, RankLayout


def test_a_rank_that_hangs_after_rank_zero_finished_fails_the_trial_within_the_bound_and_is_killed(tmp_path, monkeypatch):
    import ray

    class HungRank:  # defined here: Ray's workers get it by value (they cannot import the tests)
        """A rank whose fit never returns (it sleeps forever, as a rank stuck after rank 0 finished)."""

        def fit(self, *args):
            threading.Event().wait()

        def alive(self):
            return True

    monkeypatch.setattr(distributed, "RANKS_FINISH_S", 2.0)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        hung = ray.remote(num_cpus=0, max_concurrency=2)(HungRank).remote()
        assert ray.get(hung.alive.remote(), timeout=120)
        group = RankGroup([hung], RankLayout("127.0.0.1", 1, ("node", "node")))
        outcome = []

        def trial():
            try:
                with group.fitting(None, {"trainer": {}}, str(tmp_path), {}):
                    pass  # rank 0's fit returns at once
            except BaseException as err:
                outcome.append(err)

        start = time.monotonic()
        waiting = threading.Thread(target=trial, daemon=True)
        waiting.start()
        waiting.join(60)
        assert not waiting.is_alive(), "the trial still waits for its hung rank"
        assert time.monotonic() - start < 60
        (error,) = outcome
        assert isinstance(error, RankError) and "Rank 1 of the trial did not finish within 2 s after rank 0 finished" in str(error)
        with pytest.raises(ray.exceptions.RayActorError):  # its process was ended
            ray.get(hung.alive.remote(), timeout=60)
    finally:
        ray.shutdown()
