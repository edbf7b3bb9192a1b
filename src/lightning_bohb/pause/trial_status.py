"""A trial's status and the actions a request may ask of it: the names every part of the package uses.

`TrialStatus` values are Ray Tune's own (``Trial.RUNNING``...: a unit test checks them), so a status
read from Tune, a session summary or a result compares equal to its member. `TrialAction` is what
``lightning-bohb trial`` and the dashboard ask (`lightning_bohb.pause.trial_requests`); which status
allows which action is `lightning_bohb.pause.trial_requests.TrialHolds.ALLOWED_FROM`.
"""

from __future__ import annotations

import enum


class _Named(str, enum.Enum):
    def __str__(self) -> str:  # its value in text, on every Python version
        return str(self.value)


class TrialStatus(_Named):
    """A trial's status, as Ray Tune and the session summary record it."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    """Ended: it trained ``max_epochs`` epochs, or the scheduler (or a ``trial stop``) stopped it."""
    ERROR = "ERROR"


ENDED = (TrialStatus.TERMINATED, TrialStatus.ERROR)


class TrialAction(_Named):
    """What a request asks of one trial."""

    PAUSE = "pause"
    CONTINUE = "continue"
    STOP = "stop"
