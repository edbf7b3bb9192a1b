"""A restored search algorithm given a new budget and limit (`_ray.internals.reshape_on_restore`), against the
installed Ray: the trials it creates next are those of the search with the larger budget from the start."""

import cloudpickle
from ray import tune
from ray.tune.experiment import Experiment
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher, SearchGenerator

from lightning_bohb._ray import search_budget


def trainable(config):
    pass


def _generator(num_samples, seed=3):
    generator = BasicVariantGenerator(max_concurrent=0, random_state=seed)
    generator.add_configurations([Experiment("budget", run=trainable, config={"a": tune.uniform(0, 1)}, num_samples=num_samples)])
    return generator


def _drain(search_alg):
    values = []
    while (trial := search_alg.next_trial()) is not None:
        values.append(trial.config["a"])
    return values


def test_a_finished_random_search_given_a_larger_budget_draws_what_the_larger_search_draws(tmp_path):
    expected = _drain(_generator(6))
    small = _generator(3)
    drawn = _drain(small)
    assert len(drawn) == 3 and small.is_finished()
    small.save_to_dir(str(tmp_path), session_str="s")

    restored = search_budget.reshape_on_restore(_generator(3, seed=99), num_samples=6, max_concurrent=0)
    restored.restore_from_dir(str(tmp_path))  # what Tune calls on resume
    assert restored.total_samples == 6 and not restored.is_finished()
    assert drawn + _drain(restored) == expected


def test_the_budget_never_drops_below_what_was_created_and_the_limit_is_the_new_one(tmp_path):
    small = _generator(5)
    small.next_trial(), small.next_trial()
    state = cloudpickle.loads(cloudpickle.dumps(small.get_state()))
    restored = _generator(5)
    restored.set_state(state)
    search_budget.set_search_budget(restored, num_samples=1, max_concurrent=2)
    assert restored.total_samples == 2 and restored.max_concurrent == 2
    assert _drain(restored) == []  # two created, two in all


class _Counting(Searcher):
    def __init__(self):
        super().__init__(metric="m", mode="min")
        self.count = 0

    def suggest(self, trial_id):
        self.count += 1
        return {"a": self.count}

    def on_trial_complete(self, trial_id, result=None, error=False):
        pass

    def save(self, checkpoint_path):
        with open(checkpoint_path, "wb") as file:
            cloudpickle.dump(self.count, file)

    def restore(self, checkpoint_path):
        with open(checkpoint_path, "rb") as file:
            self.count = cloudpickle.load(file)


def _searcher_run(searcher, num_samples):
    search_alg = SearchGenerator(searcher)
    search_alg.add_configurations([Experiment("budget", run=trainable, config={}, num_samples=num_samples)])
    return search_alg


def test_a_wrapped_searcher_continues_with_its_state_a_larger_budget_and_a_new_limit(tmp_path):
    old = _searcher_run(ConcurrencyLimiter(_Counting(), max_concurrent=1), 2)
    first = old.next_trial()
    old.on_trial_complete(first.trial_id, {"m": 1.0})
    old.next_trial()
    old.save_to_dir(str(tmp_path), session_str="s")

    restored = search_budget.reshape_on_restore(ConcurrencyLimiter(_Counting(), max_concurrent=1), num_samples=4, max_concurrent=3)
    assert isinstance(restored, SearchGenerator)  # wrapped as Tune would wrap it
    restored.restore_from_dir(str(tmp_path))
    assert restored.total_samples == 4 and restored.searcher.max_concurrent == 3
    assert restored.searcher.searcher.count == 2  # what it learned came back
    more = [restored.next_trial() for _ in range(3)]
    assert [trial.config["a"] for trial in more[:2]] == [3, 4] and more[2] is None  # 4 in all
