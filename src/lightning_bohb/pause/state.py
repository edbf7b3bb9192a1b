"""`PauseState`: the one record of a session's pause request, shared by every way to ask for one.

Keys, signals, ``lightning-bohb pause``, ``pause_after``/``pause_at`` and the grace timer all act on
this object, from any thread, and at any moment: also before Ray or the pause channel exist. A
request made that early is kept and sent to the channel when the runner attaches it.
"""

from __future__ import annotations

import contextlib
import enum
import math
import threading
import time
from typing import Any, Callable, List, Optional

from lightning_bohb.utils.layout import PAUSE_WITHIN_FILE

STEP_CHECKPOINT = "lightning_bohb_step_checkpoint"
"""Metric that marks a trial's report of a checkpoint taken at a training step (a pause whose deadline
comes before the epoch end): no epoch result, only a checkpoint to resume from."""


class StopReason(str, enum.Enum):
    """Why a session's Tune loop was ended early."""

    PAUSED = "paused"
    """Every running trial checkpointed at a validated epoch end, or at a training step for a pause
    with a deadline (or hit ``pause_timeout``)."""
    QUIT = "quit"
    """Stopped at once; running trials resume from their last reported checkpoint."""


class PauseState:
    """Whether a pause or a quit is requested, since when, and the grace timer after SIGTERM.

    Args:
        grace_period: Seconds after `start_grace` before a pause still waiting becomes a quit.
    """

    def __init__(self, grace_period: float = math.inf) -> None:
        self.grace_period = grace_period
        self.requested_at: Optional[float] = None
        self.deadline: Optional[float] = None
        """Epoch seconds by which the pending pause must be saved (SIGTERM's grace period, ``pause_at``,
        ``lightning-bohb pause --within``); trials whose epoch end comes later checkpoint at a step."""
        self._quit = threading.Event()
        self._lock = threading.RLock()
        self._channel: Any = None
        self._quit_listeners: List[Callable[[], None]] = []
        self._grace_timer: Optional[threading.Timer] = None

    @property
    def pause_pending(self) -> bool:
        return self.requested_at is not None

    @property
    def quit_requested(self) -> bool:
        return self._quit.is_set()

    def attach(self, channel: Any) -> None:
        """Send requests to ``channel`` (a `ChannelHandle`) from now on, a pending one first."""
        with self._lock:
            self._channel = channel
            if self.requested_at is not None:
                channel.request_pause(self.deadline)

    def detach(self) -> None:
        with self._lock:
            self._channel = None
            if self._grace_timer is not None:
                self._grace_timer.cancel()
                self._grace_timer = None

    def request_pause(self, deadline: Optional[float] = None) -> bool:
        """Ask every running trial to pause at its next validated epoch end; False if already asked.

        With a ``deadline`` (epoch seconds), a trial whose epoch end is not expected by then checkpoints
        at its next training step instead; an earlier deadline replaces a later one, also when a pause
        was already asked.
        """
        with self._lock:
            earlier = deadline is not None and (self.deadline is None or deadline < self.deadline)
            if earlier:
                self.deadline = deadline
            if self.requested_at is not None:
                if earlier and self._channel is not None:
                    self._channel.request_pause(self.deadline)
                return False
            self.requested_at = time.time()
            if self._channel is not None:
                self._channel.request_pause(self.deadline)
            return True

    def cancel_pause(self) -> bool:
        """Withdraw a pending pause (trials already holding go on); False if none was pending."""
        with self._lock:
            if self.requested_at is None:
                return False
            self.requested_at = None
            self.deadline = None
            if self._channel is not None:
                self._channel.cancel_pause()
            return True

    def quit(self) -> bool:
        """Stop at once, keeping the last reported checkpoints; False if a quit was already asked."""
        with self._lock:
            if self._quit.is_set():
                return False
            self._quit.set()
            listeners = list(self._quit_listeners)
        for listener in listeners:
            listener()
        return True

    def on_quit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when a quit is requested (at once if it already was)."""
        with self._lock:
            self._quit_listeners.append(listener)
            already = self._quit.is_set()
        if already:
            listener()

    def start_grace(self, on_expiry: Optional[Callable[[], None]] = None, within: Optional[float] = None) -> None:
        """After SIGTERM/SIGUSR1: once ``within`` (default ``grace_period``) seconds pass, call
        ``on_expiry`` (default: `quit`); the pending pause gets that moment as its deadline. Started once;
        never when the period is infinite."""
        period = self.grace_period if within is None else within
        with self._lock:
            if self._grace_timer is not None or not math.isfinite(period):
                return
            self.request_pause(deadline=time.time() + period)
            self._grace_timer = threading.Timer(period, on_expiry or self.quit)
            self._grace_timer.daemon = True
            self._grace_timer.start()




def write_pause_within(session_dir: Any, seconds: float) -> None:
    """Before signalling the driver: its pause must be saved within ``seconds`` from now."""
    import json
    import os

    from lightning_bohb.utils.files import atomic_write

    atomic_write(os.path.join(session_dir, PAUSE_WITHIN_FILE), json.dumps({"deadline": time.time() + seconds}))


def take_pause_within(session_dir: Any) -> Optional[float]:
    """The deadline (epoch seconds) a ``pause --within`` left for this driver, removed as it is read; None if none."""
    import os

    from lightning_bohb.utils.files import read_json

    path = os.path.join(session_dir, PAUSE_WITHIN_FILE)
    try:  # read in a signal handler: never block on a planted FIFO, never follow a link out of the session
        deadline = read_json(path, _MAX_PAUSE_WITHIN_BYTES).get("deadline")
    except (OSError, ValueError, AttributeError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # the link or FIFO itself, never what it points to
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not math.isfinite(deadline):
        return None
    return float(deadline)


_MAX_PAUSE_WITHIN_BYTES = 4096
