"""Single-key controls read from the terminal on a background thread."""

from __future__ import annotations

import os
import select
import sys
import threading
from typing import Any, Callable, Dict, List, Optional


def interactive_terminal() -> bool:
    """True when stdin is a terminal we can read keys from (not nohup, CI or a batch job)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty() and os.name == "posix"
    except (AttributeError, ValueError):
        return False


class KeyboardMonitor:
    """Calls ``handlers[key]`` for each key pressed; the terminal stays in cbreak mode meanwhile.

    Cbreak mode keeps ISIG on, so Ctrl+C still arrives as SIGINT and the signal handlers own it.
    """

    def __init__(self, handlers: Dict[str, Callable[[], None]]) -> None:
        self.handlers = handlers
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._saved_attrs: Optional[List[Any]] = None

    def start(self) -> bool:
        if not interactive_terminal():
            return False
        import termios
        import tty

        fd = sys.stdin.fileno()
        self._saved_attrs = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._thread = threading.Thread(target=self._loop, args=(fd,), name="lightning-bohb-keys", daemon=True)
        self._thread.start()
        return True

    def _loop(self, fd: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            key = os.read(fd, 1).decode(errors="ignore").lower()
            handler = self.handlers.get(key)
            if handler is not None:
                handler()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        if self._saved_attrs is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved_attrs)
            self._saved_attrs = None
