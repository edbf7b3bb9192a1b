"""A restored search algorithm given the trial budget and concurrency limit of the run that resumes it.

Ray restores a searcher with the ``num_samples`` and ``max_concurrent`` it was saved with;
`reshape_on_restore` gives it new ones once restored, `set_searcher_limit` changes the limit while
the run goes on (the pause coordinator's held trials).
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

from lightning_bohb._ray.class_swap import swap_class


def set_searcher_limit(search_alg, limit: int) -> None:
    """Set how many unfinished trials ``search_alg`` allows at once (its ``max_concurrent``).

    A held trial is unfinished to the searcher, so it would keep its slot; the coordinator raises the
    limit by the number of held trials. `BasicVariantGenerator` keeps the limit in ``max_concurrent``,
    a `ConcurrencyLimiter` has ``set_max_concurrency``; other searchers are left as they are.
    """
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if isinstance(search_alg, ConcurrencyLimiter):
        if search_alg.max_concurrent != limit:
            search_alg.set_max_concurrency(limit)
    elif isinstance(search_alg, BasicVariantGenerator) and search_alg.max_concurrent > 0:
        search_alg.max_concurrent = limit


def reshape_on_restore(search_alg, num_samples: int, max_concurrent: int):
    """The search algorithm to give ``tune.run`` so that a resumed search gets a new budget and limit.

    Ray restores a searcher with the ``num_samples`` and ``max_concurrent`` it was saved with (its
    state pickle overwrites what the new run passed). Wrapped here (a `Searcher` in the
    `SearchGenerator` Tune would put around it anyway), it is restored as saved, then given
    ``num_samples`` (trials in all; never fewer than it created) and ``max_concurrent`` (0:
    unlimited), with its random state and everything it learned kept: the trials it creates next
    are the ones it would have created had the budget been larger from the start.
    Like `capture_controller`, this replaces the class.
    """
    from ray.tune.search import BasicVariantGenerator, Searcher, SearchGenerator

    if isinstance(search_alg, Searcher):
        search_alg = SearchGenerator(search_alg)
    if not isinstance(search_alg, (SearchGenerator, BasicVariantGenerator)):
        raise TypeError(f"cannot reshape a {type(search_alg).__name__} on restore")
    cls = type(search_alg)

    def restore_from_dir(self, dirpath):
        cls.restore_from_dir(self, dirpath)
        set_search_budget(self, num_samples, max_concurrent)

    swap_class(search_alg, "reshapes", restore_from_dir=restore_from_dir)
    return search_alg


def set_search_budget(search_alg, num_samples: int, max_concurrent: int) -> None:
    """Give a restored search algorithm a new trial budget (at least what it created) and concurrency limit."""
    from ray.tune.search import ConcurrencyLimiter, SearchGenerator

    if isinstance(search_alg, SearchGenerator):
        target = max(int(num_samples), int(search_alg._counter))
        if target > search_alg._total_samples:
            search_alg._finished = False  # a searcher that said FINISHED says it again
        search_alg._total_samples = target
        searcher: Any = search_alg.searcher
        while searcher is not None:
            if isinstance(searcher, ConcurrencyLimiter):
                searcher.max_concurrent = max_concurrent or sys.maxsize
            elif hasattr(searcher, "_max_concurrent") and callable(getattr(searcher, "set_max_concurrency", None)):
                searcher.set_max_concurrency(max_concurrent)  # TuneBOHB: 0 is unlimited
            searcher = getattr(searcher, "searcher", None)
        return
    # BasicVariantGenerator: one _TrialIterator per experiment (a session has one), each yielding
    # `num_samples` samples of `variants` trials (grid searches) from its own random state.
    iterators = search_alg._iterators
    if len(iterators) != 1:
        raise RuntimeError(f"expected one trial iterator in the restored BasicVariantGenerator, found {len(iterators)}")
    (iterator,) = iterators
    variants = max(1, search_alg._total_samples // max(1, iterator.num_samples))
    used = iterator.num_samples - iterator.num_samples_left
    samples = max(int(num_samples), used)
    if samples > iterator.num_samples:
        search_alg._finished = False
    iterator.num_samples_left = samples - used
    iterator.num_samples = samples
    search_alg._total_samples = samples * variants
    search_alg.max_concurrent = max_concurrent
    search_alg._trial_iter = None  # restarted from the iterator, where it stopped
    search_alg._trial_generator = itertools.chain([], iterator)
