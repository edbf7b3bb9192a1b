"""Per-trial pause, continue and stop: the requests other processes leave for the driver, and the holds.

``lightning-bohb trial pause|continue|stop SESSION TRIAL`` and the dashboard write one small JSON
file per request into ``<session>/requests/`` (temporary file + ``os.replace``, owner-only folder).
The driver's `lightning_bohb.pause.coordinator.PauseCoordinator` reads them a few times a second,
validates each (a regular file of the expected name and size, a `TrialAction`, the id of a
trial this run has) and removes it: a request is data, never code. A request made while the session
is paused waits in the folder until the session runs again.

`TrialHolds` is what the driver then knows: trials to pause at their next result, trials held
(PAUSED on request, never chosen to run until continued) and trials to stop at their next result;
it owns which action a trial's status allows (`TrialHolds.ALLOWED_FROM`) and what each one changes.
A hold is kept with Tune's experiment snapshot (the coordinator's callback state), so it survives a
session pause and resume.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple, Union

from lightning_bohb.log import logger
from lightning_bohb.pause.trial_status import TrialAction, TrialStatus
from lightning_bohb.utils.files import atomic_write, make_private_dir, read_json
from lightning_bohb.utils.layout import REQUESTS_DIR

ACTIONS = tuple(TrialAction)
TRIAL_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_REQUEST_NAME = re.compile(r"^\d{1,20}_[0-9a-f]{8}\.json$")
MAX_REQUEST_BYTES = 1024
MAX_REQUESTS_PER_READ = 64


@dataclass(frozen=True)
class TrialRequest:
    """One request: ``action`` for trial ``trial_id``."""

    action: str
    trial_id: str
    path: Optional[Path] = None


def request_dir(session_dir: Union[str, Path]) -> Path:
    return Path(session_dir) / REQUESTS_DIR


def write_request(session_dir: Union[str, Path], action: str, trial_id: str) -> Path:
    """Leave a request for the session's driver; returns the request file (removed once read)."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown trial action {action!r}; choose one of {', '.join(ACTIONS)}.")
    if not TRIAL_ID.match(trial_id):
        raise ValueError(f"{trial_id!r} is not a trial id (letters, digits, '_' and '-').")
    folder = make_private_dir(request_dir(session_dir))
    path = folder / f"{time.time_ns()}_{secrets.token_hex(4)}.json"
    atomic_write(path, json.dumps({"action": action, "trial": trial_id, "requested_at": time.time()}))
    return path


def pending_requests(session_dir: Union[str, Path]) -> List[TrialRequest]:
    """The valid requests waiting in the session, oldest first; invalid files are left alone here."""
    return [request for request in _scan(request_dir(session_dir), remove_invalid=False)]


def take_requests(session_dir: Union[str, Path]) -> List[TrialRequest]:
    """Read and validate the waiting requests, oldest first; invalid ones are logged and removed.

    The caller removes each valid request (`done`) once it has acted on it or refused it.
    """
    return _scan(request_dir(session_dir), remove_invalid=True)


def done(request: TrialRequest) -> None:
    if request.path is not None:
        try:
            os.unlink(request.path)
        except FileNotFoundError:
            pass


def _scan(folder: Path, remove_invalid: bool) -> List[TrialRequest]:
    if folder.is_symlink():  # a planted link: nothing outside the session is read or removed
        logger.warning("Ignoring trial requests in %s: it is a symbolic link.", folder)
        return []
    try:
        entries = sorted((entry for entry in os.scandir(folder) if _REQUEST_NAME.match(entry.name)), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    requests = []
    for entry in entries[:MAX_REQUESTS_PER_READ]:
        request, problem = _read(Path(entry.path))
        if request is not None:
            requests.append(request)
        elif remove_invalid:
            logger.warning("Ignoring the trial request %s: %s.", entry.path, problem)
            done(TrialRequest("", "", Path(entry.path)))
    return requests


def _read(path: Path) -> "tuple[Optional[TrialRequest], str]":
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None, "it is gone"
    if not stat.S_ISREG(info.st_mode):
        return None, "not a regular file"
    if info.st_uid != os.getuid():
        return None, "owned by another user"
    if info.st_size > MAX_REQUEST_BYTES:
        return None, f"larger than {MAX_REQUEST_BYTES} bytes"
    try:  # swapped for a FIFO or a link since the lstat: read_json neither blocks nor follows
        data = read_json(path, MAX_REQUEST_BYTES)
    except (OSError, ValueError) as err:
        return None, f"unreadable ({err})"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    action, trial_id = data.get("action"), data.get("trial")
    if action not in ACTIONS:
        return None, f"unknown action {action!r}"
    if not isinstance(trial_id, str) or not TRIAL_ID.match(trial_id):
        return None, f"invalid trial id {trial_id!r}"
    return TrialRequest(TrialAction(action), trial_id, path), ""


class TrialHolds:
    """Which trials are to pause or stop at their next result, and which are held PAUSED on request.

    Used on the driver's main thread only (Tune's loop: the coordinator and the scheduler hooks).
    """

    ALLOWED_FROM: Dict[TrialAction, Tuple[TrialStatus, ...]] = {
        TrialAction.PAUSE: (TrialStatus.RUNNING, TrialStatus.PENDING),
        TrialAction.CONTINUE: (TrialStatus.PAUSED, TrialStatus.RUNNING, TrialStatus.PENDING),
        TrialAction.STOP: (TrialStatus.RUNNING, TrialStatus.PENDING, TrialStatus.PAUSED),
    }
    """The statuses from which each action does something (a request for another one has nothing to do)."""

    @classmethod
    def allows(cls, action: str, status: str) -> bool:
        return status in cls.ALLOWED_FROM[TrialAction(action)]

    def __init__(self) -> None:
        self.pausing: Set[str] = set()
        """Asked to pause while running: the scheduler's next decision for them becomes PAUSE."""
        self.held: Set[str] = set()
        """PAUSED on request: not chosen to run until continued."""
        self.stopping: Set[str] = set()
        """Asked to stop while running: the scheduler's next decision for them becomes STOP."""
        self.to_continue: Set[str] = set()
        """Continued while PAUSED: made PENDING (runnable) before the scheduler next chooses."""
        self.restored = False
        """Set by `restore`: held trials come back PENDING from a snapshot and are set PAUSED again."""

    def __bool__(self) -> bool:
        return bool(self.pausing or self.held or self.stopping or self.to_continue)

    def decide(self, trial_id: str, decision: str) -> str:
        """The scheduler decided ``decision`` (Tune's CONTINUE, PAUSE, STOP) on a result of this trial.

        A result is a result: the scheduler saw it as it would have without the request; only what
        happens next changes. STOP wins over a pause (the trial is done either way).
        """
        if trial_id in self.stopping:
            self.stopping.discard(trial_id)
            self.pausing.discard(trial_id)
            return "STOP"
        if trial_id in self.pausing and decision != "STOP":
            self.pausing.discard(trial_id)
            self.held.add(trial_id)
            return "PAUSE"
        self.pausing.discard(trial_id)
        return decision

    def apply(self, action: str, trial_id: str, status: str) -> bool:
        """Take ``action`` for a trial not ended, now ``status``; True when the trial is to be stopped at once
        (a PENDING or PAUSED trial has nothing in flight), else its next result or the next choice acts.

        ``pause``: held from its next result (a trial not started yet: after its first epoch); ``continue``:
        no longer held, made runnable if PAUSED; ``stop``: STOP on its next result if RUNNING.
        """
        if action == TrialAction.PAUSE:
            if trial_id in self.to_continue:
                self.to_continue.discard(trial_id)
                self.held.add(trial_id)
            elif trial_id not in self.held:
                self.pausing.add(trial_id)
            return False
        if action == TrialAction.CONTINUE:
            self.pausing.discard(trial_id)
            if trial_id in self.held:
                self.held.discard(trial_id)
                if status == TrialStatus.PAUSED:
                    self.to_continue.add(trial_id)
            return False
        if status == TrialStatus.RUNNING:
            self.stopping.add(trial_id)
            return False
        self.held.discard(trial_id)
        self.pausing.discard(trial_id)
        return True

    def state(self) -> Dict[str, Any]:
        """Plain data for the experiment snapshot (a pending pause is kept too: it is still asked for)."""
        return {"held": sorted(self.held | self.pausing), "stopping": sorted(self.stopping)} if self else {}

    def restore(self, state: Dict[str, Any]) -> None:
        """After a resume every held trial is PENDING again; it is held from its checkpoint once more."""
        held = state.get("held") or []
        self.held = {t for t in held if isinstance(t, str)}
        self.stopping = {t for t in state.get("stopping") or [] if isinstance(t, str)}
        self.restored = True
