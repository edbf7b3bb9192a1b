"""Install pause/quit signal handlers on the main thread and put the previous ones back afterwards."""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable, Dict

PAUSE_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s is not None)
QUIT_SIGNAL = getattr(signal, "SIGUSR2", None)
"""``lightning-bohb pause --now`` sends this one: stop at once, keep the last checkpoints."""


class SignalHandlers:
    """Routes SIGINT, SIGTERM and SIGUSR1 to ``on_pause(signum)`` and SIGUSR2 to ``on_quit(signum)``."""

    def __init__(self, on_pause: Callable[[int], None], on_quit: Callable[[int], None]) -> None:
        self.on_pause = on_pause
        self.on_quit = on_quit
        self._previous: Dict[int, Any] = {}

    def install(self) -> bool:
        """(Re)install the handlers; returns False off the main thread, where Python forbids it."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in PAUSE_SIGNALS:
            self._swap(signum, lambda s, _frame: self.on_pause(s))
        if QUIT_SIGNAL is not None:
            self._swap(QUIT_SIGNAL, lambda s, _frame: self.on_quit(s))
        return True

    def _swap(self, signum: int, handler) -> None:
        previous = signal.signal(signum, handler)
        self._previous.setdefault(signum, previous)

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
