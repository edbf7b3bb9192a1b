"""`SessionLock`: the exclusive right to run a session, held by its driver while it runs."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

from lightning_bohb.exceptions import SessionError
from lightning_bohb.utils.files import remove_abandoned_temp_files

LOCK_FILE = "session.lock"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(session_dir: Union[str, Path]) -> Optional[Dict[str, Any]]:
    """The lock's owner (``pid``, ``host``, ``since``), or ``None`` when no lock file exists."""
    try:
        return json.loads((Path(session_dir) / LOCK_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"pid": -1, "host": "?", "since": 0}


def lock_is_live(lock: Optional[Dict[str, Any]]) -> bool:
    """Whether ``lock`` belongs to a process that still runs (on another host: assumed live)."""
    if not lock:
        return False
    if lock.get("host") != socket.gethostname():
        return True
    return pid_alive(int(lock.get("pid", -1)))


class SessionLock:
    """Exclusive right to run a session; a lock left by a dead process on this host is taken over."""

    def __init__(self, session_dir: Union[str, Path]) -> None:
        self.path = Path(session_dir) / LOCK_FILE
        self.held = False

    def acquire(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                owner = read_lock(self.path.parent)
                if owner is not None and lock_is_live(owner):
                    raise SessionError(
                        f"Session {self.path.parent} is already running (pid {owner.get('pid')} on "
                        f"{owner.get('host')}). Pause it first: lightning-bohb pause {self.path.parent}"
                    ) from None
                remove_abandoned_temp_files(self.path.parent)  # its process is gone, mid-write or not
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}, handle)
            self.held = True
            return
        raise SessionError(f"Could not lock {self.path}: another process keeps taking it.")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
