"""`tune_advice_hidden`: Ray Tune's messages that are wrong or noise for a session, hidden while it runs.

Filters on three of Tune's loggers, removed when the run ends: Tune's "interrupted ... resume with
tune.run(...)" advice (a session resumes with its own command), after a pause its warning that trials
stopped before their first result have no metrics file (they start over on resume), and its "no trial is
running ... insufficient resources" advice while trials are held on request.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterator

_TUNE_ADVICE_LOGGER = "ray.tune.tune"
_TUNE_ANALYSIS_LOGGER = "ray.tune.analysis.experiment_analysis"
_TUNE_RESOURCES_LOGGER = "ray.tune.execution.insufficient_resources_manager"


@contextlib.contextmanager
def tune_advice_hidden(coordinator: Callable[[], Any]) -> Iterator[None]:
    """Tune's noise hidden in the block; ``coordinator()`` is the session's `PauseCoordinator` (None before it has one)."""
    filters = [
        (logging.getLogger(_TUNE_ADVICE_LOGGER), _BelowError()),
        (logging.getLogger(_TUNE_ANALYSIS_LOGGER), _NoMetricsYet(coordinator)),
        (logging.getLogger(_TUNE_RESOURCES_LOGGER), _NotWhileHeld(coordinator)),
    ]
    for tune_logger, noise in filters:
        tune_logger.addFilter(noise)
    try:
        yield
    finally:
        for tune_logger, noise in filters:
            tune_logger.removeFilter(noise)


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


class _NoMetricsYet(logging.Filter):
    """Drops Tune's "Failed to fetch metrics" for a run the session ended early (trials it held
    before their first result have none; they start over on resume)."""

    def __init__(self, coordinator: Callable[[], Any]) -> None:
        super().__init__()
        self.coordinator = coordinator

    def filter(self, record: logging.LogRecord) -> bool:
        coordinator = self.coordinator()
        ended_early = coordinator is not None and coordinator.interrupted
        return not (ended_early and record.getMessage().startswith("Failed to fetch metrics"))


class _NotWhileHeld(logging.Filter):
    """Drops Tune's "no trial is running ... insufficient resources" advice while trials are held on
    request (``lightning-bohb trial pause``): nothing runs because the user said so."""

    def __init__(self, coordinator: Callable[[], Any]) -> None:
        super().__init__()
        self.coordinator = coordinator

    def filter(self, record: logging.LogRecord) -> bool:
        coordinator = self.coordinator()
        return not (coordinator is not None and coordinator.holds.held)
