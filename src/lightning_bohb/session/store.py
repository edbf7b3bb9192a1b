"""Files of a session: atomic writes, owner-only folders, and the lock held while it runs."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

from lightning_bohb.exceptions import SessionError

LOCK_FILE = "session.lock"


def make_private_dir(path: Union[str, Path]) -> Path:
    """Create ``path`` (and parents) readable by its owner only."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def atomic_write(path: Union[str, Path], data: Union[bytes, str]) -> None:
    """Write to a temporary file in the same folder, fsync it, then `os.replace` it into place.

    A crash at any moment leaves either the previous file or the new one, never half of one.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
                if lock_is_live(owner):
                    raise SessionError(
                        f"Session {self.path.parent} is already running (pid {owner.get('pid')} on "
                        f"{owner.get('host')}). Pause it first: lightning-bohb pause {self.path.parent}"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
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
