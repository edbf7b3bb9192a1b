"""The best trial of a search and its value: the one rule `status`, `list`, the dashboard, `export`, `plot`,
the progress lines and live table, checkpoint retention and ``best_config.yaml`` all follow.

A trial's value is the best finite value of the metric it reported at any epoch (``min`` or ``max`` by the
search's mode). NaN, +inf and -inf never win: a trial that reported only those has no value, and a search
none of whose trials has one has no best trial. Of trials with equal values the first in the search's
order (the order Tune created them) is the best, as Ray's ``ResultGrid.get_best_result`` keeps the first.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional, Tuple, TypeGuard, TypeVar

Trial = TypeVar("Trial")


def is_score(value: Any) -> TypeGuard[float]:
    """Whether ``value`` is a finite number (not a bool), the only kind of value that can be best."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def better(value: Any, previous: Any, mode: str) -> TypeGuard[float]:
    """Whether ``value`` beats ``previous`` for ``mode`` ``min``/``max``: a finite value beats a smaller
    (``max``) or larger (``min``) one and a ``previous`` that is none or not finite; an equal one does not."""
    if not is_score(value):
        return False
    return not is_score(previous) or (value < previous if mode == "min" else value > previous)


def best_value(values: Iterable[Any], mode: str) -> Optional[float]:
    """The best finite value of ``values`` (one trial's reports), or ``None`` when none is finite."""
    top = None
    for value in values:
        if better(value, top, mode):
            top = value
    return top


def best_of(candidates: Iterable[Tuple[Trial, Any]], mode: str) -> Optional[Tuple[Trial, float]]:
    """The best ``(trial, value)`` of ``candidates`` (each trial with its value, in the search's order; the
    first of equal values wins), or ``None`` when no value is finite."""
    top: Optional[Tuple[Trial, float]] = None
    for trial, value in candidates:
        if better(value, None if top is None else top[1], mode):
            top = (trial, value)
    return top
