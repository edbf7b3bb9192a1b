"""`PauseState`: the one record of a session's pause request, shared by every way to ask for one.

Keys, signals, ``lightning-bohb pause``, ``pause_after``/``pause_at`` and the grace timer all act on
this object, from any thread, and at any moment: also before Ray or the pause channel exist. A
request made that early is kept and sent to the channel when the runner attaches it.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from typing import Any, Callable, List, Optional


class StopReason(str, enum.Enum):
    """Why a session's Tune loop was ended early."""

    PAUSED = "paused"
    """Every running trial checkpointed at a validated epoch end (or hit ``pause_timeout``)."""
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
                channel.request_pause()

    def detach(self) -> None:
        with self._lock:
            self._channel = None
            if self._grace_timer is not None:
                self._grace_timer.cancel()
                self._grace_timer = None

    def request_pause(self) -> bool:
        """Ask every running trial to pause at its next validated epoch end; False if already asked."""
        with self._lock:
            if self.requested_at is not None:
                return False
            self.requested_at = time.time()
            if self._channel is not None:
                self._channel.request_pause()
            return True

    def cancel_pause(self) -> bool:
        """Withdraw a pending pause (trials already holding go on); False if none was pending."""
        with self._lock:
            if self.requested_at is None:
                return False
            self.requested_at = None
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

    def start_grace(self, on_expiry: Optional[Callable[[], None]] = None) -> None:
        """After SIGTERM/SIGUSR1: once ``grace_period`` seconds pass, call ``on_expiry`` (default:
        `quit`). Started once; never when the grace period is infinite."""
        with self._lock:
            if self._grace_timer is not None or not math.isfinite(self.grace_period):
                return
            self._grace_timer = threading.Timer(self.grace_period, on_expiry or self.quit)
            self._grace_timer.daemon = True
            self._grace_timer.start()
