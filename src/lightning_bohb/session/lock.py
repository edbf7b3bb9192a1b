"""`SessionLock`: the exclusive right to run a session, held by its driver for its whole run.

Two files in the session folder:

- ``session.flock`` carries an OS lock (``flock``), taken without waiting and held until the driver
  releases it or dies (the kernel drops it with the process, ``kill -9`` included). Whoever holds it
  is the only process that writes the owner record, sweeps temporary files or deletes the session,
  so taking over a dead driver's session is atomic: two resumes racing over a stale record cannot
  both win. The file is never deleted (deleting it would let a second process lock a new file while
  the first still holds the old one); it is empty.
- ``session.lock`` is the owner record, JSON written atomically: pid, host, boot id, process start
  time, command line, since, and a heartbeat the driver renews every `HEARTBEAT_S` seconds.
  Readers that must not take the lock (``status``, ``list``, ``pause``) judge liveness from it:
  on the same host, the pid must be alive and have the recorded start time (a reused pid is not the
  driver); from another host, the heartbeat must be less than `STALE_AFTER_BEATS` beats old. An
  empty, truncated or garbled record is stale.

The OS lock decides between processes of one machine (and of several, where the filesystem's locks
span hosts, as NFS with a lock manager does); the heartbeat decides for a driver on another host.
A record that still looks live when the OS lock is free (a driver on another host whose heartbeat is
fresh) is taken over only with ``force``, after logging whose it was.

Losing it stops the loser: a driver whose beat finds another owner's record (``--force`` elsewhere, a
filesystem without cross-host locks), or that could not renew its record for `RENEW_WITHIN_BEATS`
beats (one beat before others may judge it stale), has lost the session (`Heartbeat.loss`); the
runner then writes nothing more and ends its run (`lightning_bohb.exceptions.SessionLockLost`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.owner_record import (
    HEARTBEAT_S,
    RENEW_WITHIN_BEATS,
    STALE_AFTER_BEATS,
    describe_owner,
    live_elsewhere,
    lock_is_live,
    new_record,
    read_lock,
)
from lightning_bohb.utils.files import atomic_write, remove_abandoned_temp_files
from lightning_bohb.utils.layout import LOCK_FILE, OS_LOCK_FILE

_WAIT_FOR_RECORD_S = 2.0  # a driver that holds the OS lock writes its record right after taking it

logger = logging.getLogger(__name__)


class Heartbeat:
    """A daemon thread that calls ``beat`` every ``interval`` seconds until `stop`, or until the record
    is lost; `SessionLock`'s and the store lease's.

    ``beat`` returns True when it renewed the record, None when it could not (out of reach: the next
    beat tries again), or why the record is no longer its owner's (a str). ``renewed_at`` is when
    (``time.monotonic``) the record's last heartbeat was taken, before it was written.
    """

    def __init__(self, beat: Callable[[], Union[bool, str, None]], interval: float, name: str, renewed_at: float) -> None:
        self._beat, self._interval = beat, interval
        self.renewed_at = renewed_at
        self._lost: Optional[str] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval) and self.loss() is None:
            self._renew()
        if self._lost is not None and not self._stop.is_set():
            logger.error("%s", self._lost)

    def _renew(self) -> None:
        started = time.monotonic()  # when the heartbeat it writes was taken
        renewed = self._beat()
        if isinstance(renewed, str):
            self._lost = renewed
        elif renewed is True:
            self.renewed_at = started

    def loss(self) -> Optional[str]:
        """Why the record is lost (another owner's, or not renewed for `RENEW_WITHIN_BEATS` beats); None while
        held. Once lost, always lost: its beats end.

        Past the renewal interval it first tries one beat itself: a driver that was suspended (or whose
        store is back in reach) and still finds its own record renews it and goes on.
        """
        if self._lost is None and self._unrenewed() > RENEW_WITHIN_BEATS * self._interval:
            self._renew()
            unrenewed = self._unrenewed()
            if self._lost is None and unrenewed > RENEW_WITHIN_BEATS * self._interval:
                self._lost = (
                    f"its heartbeat could not be renewed for {unrenewed:.0f} s (out of reach), and others may take the "
                    f"session after {STALE_AFTER_BEATS * self._interval:.0f} s"
                )
        return self._lost

    def confirm(self) -> Optional[str]:
        """`loss`, decided now: beats until one renews the record (None) or it is lost (why), within the
        renewal interval. Before a run's last writes: a driver cut off from its store, whose trials may have
        ended on that very outage before its heartbeat ran out, stops as having lost the session (exit 4)."""
        while self.loss() is None:
            asked = time.monotonic()
            self._renew()
            if self.renewed_at >= asked or self._lost is not None:
                return self._lost
            # Out of reach: again a beat later, or as the renewal interval ends (then `loss` says lost).
            time.sleep(min(self._interval, max(0.0, RENEW_WITHIN_BEATS * self._interval - self._unrenewed())) + 0.01)
        return self._lost

    def _unrenewed(self) -> float:
        return time.monotonic() - self.renewed_at

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the thread to end by itself; whether it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


# -- holding the lock ----------------------------------------------------------------------------
class OwnerLease(ABC):
    """The exclusive right to run (or delete) a session, held by one driver at a time: `acquire`, a
    heartbeat from a daemon thread while held, `loss`, `release`. `SessionLock` holds it for a session
    folder, `lightning_bohb.session.store_lease.StoreLease` for a session in object storage; the runner and
    the commands see only this interface (`lightning_bohb.session.backend.SessionBackend.lease`).

    Args:
        where: The session, as the user names it (its folder or URI), for messages.
        heartbeat_s: Renew the record's heartbeat this often from a daemon thread while held;
            ``None`` for a short hold that needs none (``clean``).
    """

    heartbeat_name = "lightning_bohb-heartbeat"

    def __init__(self, where: str, heartbeat_s: Optional[float] = HEARTBEAT_S) -> None:
        self.where = where
        self.heartbeat_s = heartbeat_s
        self.held = False
        self.broken: Optional[Dict[str, Any]] = None
        """The live-looking record a forced `acquire` took over, if any."""
        self._record: Dict[str, Any] = {}
        self._mutex = threading.Lock()
        self._beats: Optional[Heartbeat] = None

    def acquire(self, force: bool = False, sweep: bool = True) -> None:
        """Take it, or raise `SessionError` naming its owner and the pause command.

        With ``force``, a record that still looks live but whose driver cannot be checked from here (a
        driver on another host) is taken over after logging whose it was. With ``sweep``, temporary
        files that killed writers left in the session are removed, once it is held.
        """
        renewed_at = time.monotonic()  # before the record's heartbeat is taken
        self._record = self._take(force, sweep)
        self.held = True
        if self.heartbeat_s:
            self._beats = Heartbeat(self._beat, self.heartbeat_s, self.heartbeat_name, renewed_at)

    def loss(self, confirm: bool = False) -> Optional[str]:
        """Why this driver no longer holds it (`Heartbeat.loss`; with ``confirm``, `Heartbeat.confirm`); None while it does."""
        return None if self._beats is None else self._beats.confirm() if confirm else self._beats.loss()

    def release(self) -> None:
        """Give it up; the owner record is removed only if it is still this driver's."""
        if self._beats is not None:
            self._beats.stop()
            self._beats = None
        with self._mutex:
            if not self.held:
                return
            self.held = False
            self._give_up()

    def _beat(self) -> Union[bool, str, None]:
        with self._mutex:
            return self._renew() if self.held else None

    def _taken_over(self, previous: Optional[Dict[str, Any]], force: bool, live_elsewhere: Callable[[Dict[str, Any]], str]) -> None:
        """Refuse a live ``previous`` record without ``force`` (`SessionError`); with it, note whose it was."""
        if not lock_is_live(previous):
            return
        assert previous is not None
        if not force:
            raise SessionError(live_elsewhere(previous))
        self.broken = previous
        logger.warning(f"Breaking the lock of session {self.where} (--force): it was {describe_owner(previous)}.")

    @abstractmethod
    def _take(self, force: bool, sweep: bool) -> Dict[str, Any]:
        """Write a new owner record (`new_record`) as `acquire` describes, and return it."""

    @abstractmethod
    def _renew(self) -> Union[bool, str, None]:
        """One beat, under the mutex while held: `Heartbeat`'s ``beat``."""

    @abstractmethod
    def _give_up(self) -> None:
        """Remove the owner record if it is still this driver's, under the mutex."""


class SessionLock(OwnerLease):
    """`OwnerLease` of a session folder: an OS lock on ``session.flock`` and the record ``session.lock``.

    Args:
        session_dir: The session folder (it must exist).
        heartbeat_s: As `OwnerLease`.
    """

    heartbeat_name = "lightning_bohb-lock-heartbeat"

    def __init__(self, session_dir: Union[str, Path], heartbeat_s: Optional[float] = HEARTBEAT_S) -> None:
        super().__init__(str(session_dir), heartbeat_s)
        self.session_dir = Path(session_dir)
        self.path = self.session_dir / LOCK_FILE
        self.os_lock_path = self.session_dir / OS_LOCK_FILE
        self._fd: Optional[int] = None

    def _take(self, force: bool, sweep: bool) -> Dict[str, Any]:
        """A lock a live process holds on this machine (its OS lock) is never broken, even with ``force``."""
        self._fd = self._open_os_lock()
        if not self._lock_os_file():
            owner = self._wait_for_live_record()
            os.close(self._fd)
            self._fd = None
            whose = describe_owner(owner) if lock_is_live(owner) else "its owner has not written its record yet"
            unbreakable = " (--force never breaks a lock that a running process holds)" if force else ""
            raise SessionError(
                f"Session {self.session_dir} is already running ({whose}); a process holds its lock "
                f"{self.os_lock_path}{unbreakable}. Pause it first: lightning-bohb pause {shlex.quote(str(self.session_dir))}"
            )
        try:
            self._taken_over(read_lock(self.session_dir), force, self._live_elsewhere)
            if sweep:
                remove_abandoned_temp_files(self.session_dir)  # only the lock's holder writes here now
            self._record = new_record(self.heartbeat_s)
            self._write_record()
        except BaseException as err:
            self._unlock_os_file()
            if isinstance(err, OSError):
                raise SessionError(f"Could not write the session lock {self.path}: {err.strerror or err}.") from err
            raise
        return self._record

    def _give_up(self) -> None:
        try:
            current = read_lock(self.session_dir)
            if current is not None and current.get("token") == self._record.get("token"):
                self.path.unlink(missing_ok=True)
        except OSError:
            pass  # the folder was removed under the lock (clean)
        self._unlock_os_file()

    # -- internals -------------------------------------------------------------------------------
    def _open_os_lock(self) -> int:
        try:
            return os.open(self.os_lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise SessionError(f"Session folder not found: {self.session_dir}.") from None
        except OSError as err:
            why = "it is a symbolic link" if err.errno == errno.ELOOP else err.strerror or str(err)
            raise SessionError(f"Could not open the session lock {self.os_lock_path}: {why}.") from None

    def _lock_os_file(self) -> bool:
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as err:  # ENOLCK: a filesystem without locks (NFS without its lock manager)
            logger.warning(f"The filesystem of {self.os_lock_path} has no locks ({err.strerror}); relying on the heartbeat only.")
        return True

    def _unlock_os_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None

    def _wait_for_live_record(self) -> Optional[Dict[str, Any]]:
        """The record of the OS lock's holder (the previous owner's may still be there for a moment)."""
        deadline = time.monotonic() + _WAIT_FOR_RECORD_S
        while True:
            record = read_lock(self.session_dir)
            if lock_is_live(record) or time.monotonic() > deadline:
                return record
            time.sleep(0.05)

    def _live_elsewhere(self, previous: Dict[str, Any]) -> str:
        if previous["host"] != socket.gethostname():
            return live_elsewhere(str(self.session_dir), previous)
        session = shlex.quote(str(self.session_dir))
        return (
            f"Session {self.session_dir} is locked by a live process that does not hold its OS lock ({describe_owner(previous)}). "
            f"Pause it first: lightning-bohb pause {session}. If it is not this session's driver, resume with: "
            f"lightning-bohb resume --force {session}"
        )

    def _write_record(self) -> None:
        atomic_write(self.path, json.dumps(self._record))

    def _renew(self) -> Union[bool, str, None]:
        current = read_lock(self.session_dir)
        if current is None or current.get("token") != self._record["token"]:
            return f"the lock of session {self.session_dir} was taken over: {describe_owner(current)}"
        self._record["heartbeat"] = time.time()
        try:
            self._write_record()
        except OSError as err:  # a full disk, a folder out of reach: the next beat tries again
            logger.warning(f"Could not renew the lock of {self.session_dir} (the next beat tries again): {err}")
            return None
        return True
