"""``lightning-bohb pause SESSION_DIR``: ask a running session's driver to pause, from another shell."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import time
from pathlib import Path
from typing import Any, Dict, Optional

from lightning_bohb.cli.arguments import Number
from lightning_bohb.cli.commands.base import Command, add_session_dir
from lightning_bohb.cli.format import printable
from lightning_bohb.cli.sessions import timestamp
from lightning_bohb.exceptions import LightningTuneError, SessionError
from lightning_bohb.session.backend import SessionBackend, view_session
from lightning_bohb.session.owner_record import driver_identity_problem, heartbeat_age, lock_is_live, read_lock
from lightning_bohb.session.state import SessionStatus, read_summary
from lightning_bohb.utils.layout import CONTROL_FILE, LOCK_FILE, SUMMARY_FILE


class Pause(Command):
    name = "pause"
    help = "pause a running session from another shell"
    description = (
        "Ask the driver of a running session to pause (SIGUSR1: at the next validation boundary; with --now "
        "SIGUSR2: at once, keeping the last checkpoints), wait until it has paused, and print the resume "
        "command. On the driver's host it signals the driver; with RAY_ADDRESS set (any node of the session's Ray "
        "cluster; RAY_AUTH_TOKEN where the cluster uses token authentication) it asks the driver's control actor "
        "through Ray. The session folder must be readable there (a shared filesystem)."
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_session_dir(parser, "the session folder (<experiment_dir>/<name>/session_<id>)")
        parser.add_argument("--now", action="store_true", help="stop at once instead of at the next validation")
        parser.add_argument("--within", metavar="DURATION", type=Number(strict=True, duration=True), default=None,
                            help="the pause must be saved within this long (e.g. 60s, 2m): trials whose epoch end comes later "
                            "checkpoint at their next training step; at the end of it, quit (default: the session's grace_period)")
        parser.add_argument("--timeout", metavar="S", type=Number(strict=True, duration=True), default=300.0,
                            help="seconds to wait for the session to pause (default: 300)")

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        if args.now and args.within is not None:
            raise LightningTuneError(
                "--now and --within contradict each other: --now stops at once, --within saves a pause by a deadline. Give one."
            )
        return pause(args.session_dir, now=args.now, timeout=args.timeout, within=args.within)


def pause(session_dir: str, now: bool = False, timeout: float = 300.0, poll: float = 0.2, within: Optional[float] = None) -> int:
    """Ask a running session's driver to pause, wait until it has, print the resume command.

    Through Ray (its control actor, `lightning_bohb.pause.remote`) when ``RAY_ADDRESS`` is set or the
    driver runs on another host; else by a signal (SIGUSR1; SIGUSR2 with ``now``) to the verified pid.

    ``within``: seconds by which the pause must be saved (trials checkpoint at a step if their epoch
    end comes later; then the driver quits), instead of the session's ``grace_period``.

    A driver still starting (its lock is newer than its summary) gets the signal only once it
    reports RUNNING: before that it has no pause handler yet.

    A session in object storage (a URI) is read from its store (`lightning_bohb.session.backend.view_session`); ``within`` is put there.
    """
    with view_session(session_dir) as view:
        return _pause(view, now, timeout, poll, within)


def _pause(view: SessionBackend, now: bool, timeout: float, poll: float, within: Optional[float]) -> int:
    session, name = view.folder, view.location
    deadline = time.monotonic() + timeout
    lock = _running_lock(view)
    host, pid = lock.get("host"), int(lock.get("pid", -1))
    through_ray = bool(os.environ.get("RAY_ADDRESS")) or host != socket.gethostname()
    if host != socket.gethostname() and not os.environ.get("RAY_ADDRESS") and not (session / CONTROL_FILE).is_file():
        raise SessionError(
            f"Session {name} runs on host {host!r} (pid {pid}, heartbeat {heartbeat_age(lock):.0f} s ago), not on this "
            f"one ({socket.gethostname()!r}). Run this command on {host}, or on a node of its Ray cluster with RAY_ADDRESS "
            f"set: lightning-bohb pause {shlex.quote(name)}"
        )
    if not _driver_ready(session, lock):
        print(printable(f"Session {name} is starting; waiting for it to run before pausing it..."), flush=True)
        while not _driver_ready(view.refresh(SUMMARY_FILE, LOCK_FILE), lock):
            if time.monotonic() > deadline:
                raise SessionError(f"Session {name} did not start running within {timeout:g} s; nothing was sent.")
            if not lock_is_live(read_lock(session)):
                return _after_driver_exit(view)
            time.sleep(poll)
    signum = signal.SIGUSR2 if now else signal.SIGUSR1
    if through_ray:
        while time.monotonic() < deadline and lock_is_live(read_lock(session)):
            if (view.refresh(CONTROL_FILE, LOCK_FILE) / CONTROL_FILE).is_file():
                break
            time.sleep(poll)  # written just after the RUNNING summary
        return _wait_for_pause(view, deadline, timeout, poll, _pause_through_ray(view, host, now, within))
    problem = driver_identity_problem(lock)  # a reused pid or a planted lock must never be signalled
    if problem:
        raise SessionError(
            f"Not signalling pid {pid}: {problem}. The lock {view.file(LOCK_FILE)} does not name this session's driver; "
            f"nothing was sent. Check the session with: lightning-bohb status {shlex.quote(name)}"
        )
    if within is not None and not now:
        if not view.signals_driver:
            raise SessionError(
                f"Session {name} is in object storage: its driver takes `pause --within` through Ray only (set RAY_ADDRESS "
                f"to its cluster), or pause it without --within: lightning-bohb pause {shlex.quote(name)}"
            )
        from lightning_bohb.pause.state import write_pause_within

        write_pause_within(session, within)  # read by the driver when the signal arrives
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return _after_driver_exit(view)
    except PermissionError:
        raise SessionError(f"Not allowed to signal pid {pid}, the driver of session {name}; run as its owner.") from None
    how = "now, keeping the last checkpoints" if now else "at the next validation boundary"
    if within is not None and not now:
        how = f"within {within:g} s (at a training step where the next validation comes later)"
    return _wait_for_pause(view, deadline, timeout, poll, f"Asked session {name} (pid {pid}) to pause {how}")


def _pause_through_ray(view: SessionBackend, host: Any, now: bool, within: Optional[float]) -> str:
    """Ask the driver through its control actor in the Ray cluster (``RAY_ADDRESS``, else this node's
    Ray); what was done. With ``RAY_ADDRESS`` set this is the only route, also on the driver's host."""
    from lightning_bohb.pause.remote import send_request
    from lightning_bohb.pause.state import take_pause_within, write_pause_within
    from lightning_bohb.utils.layout import PAUSE_WITHIN_FILE

    session, name = view.folder, view.location
    if within is not None and not now:
        write_pause_within(session, within)  # read by the driver when the request arrives
        view.push(PAUSE_WITHIN_FILE)
    try:
        driver = send_request(session, "quit" if now else "pause")
    except SessionError as err:
        if within is not None and not now:
            take_pause_within(session)  # not left for a later signal
            view.push(PAUSE_WITHIN_FILE)  # gone where the session lives too
        if host == socket.gethostname() and view.signals_driver:
            raise SessionError(f"{err} On the driver's host, without RAY_ADDRESS, the driver is signalled instead.") from None
        raise
    how = "now, keeping the last checkpoints" if now else "at the next validation boundary"
    if within is not None and not now:
        how = f"within {within:g} s (at a training step where the next validation comes later)"
    where = f"pid {driver.get('pid', '?')} on {driver.get('host', host)}"
    return f"Asked session {name} ({where}) through Ray to pause {how}"


def _wait_for_pause(view: SessionBackend, deadline: float, timeout: float, poll: float, asked: str) -> int:
    left = max(0.0, deadline - time.monotonic())
    print(printable(f"{asked}; waiting up to {left:.0f} s..."), flush=True)
    while time.monotonic() < deadline:
        if not lock_is_live(read_lock(view.refresh(LOCK_FILE))):  # the driver released its lock: it is done
            view.refresh(SUMMARY_FILE)
            return _after_driver_exit(view)
        time.sleep(poll)
    name = shlex.quote(view.location)
    raise SessionError(
        f"Session {view.location} did not pause within {timeout:g} s; it is still running. Check it with: "
        f"lightning-bohb status {name}; stop it now with: lightning-bohb pause --now {name}"
    )


def _running_lock(view: SessionBackend) -> Dict[str, Any]:
    """The live lock of a running session, else a `SessionError` that says what state it is in."""
    session, name = view.folder, view.location
    lock = read_lock(session)
    if lock is not None and lock_is_live(lock):
        return lock
    summary = read_summary(session)
    status = summary.get("status", "?")
    if status == SessionStatus.RUNNING:
        pid = lock["pid"] if lock and lock["pid"] > 0 else None  # an unreadable lock names none
        raise SessionError(
            f"Session {name} is not running (status: RUNNING, but its driver{f' (pid {pid})' if pid else ''} "
            f"is gone). Resume it with: {view.resume_command()}"
        )
    raise SessionError(f"Session {name} is not running (status: {status}).")


def _driver_ready(session: Path, lock: Dict[str, Any]) -> bool:
    """Whether the lock's driver wrote a RUNNING summary (it does so once its signal handlers are in)."""
    try:
        summary = read_summary(session)
    except SessionError:
        return False  # a new session writes its first summary once it runs
    if summary.get("status") != SessionStatus.RUNNING:
        return False
    updated = timestamp(summary.get("updated_at"))
    return updated is None or updated >= int(float(lock.get("since", 0)))


def _after_driver_exit(view: SessionBackend) -> int:
    name = view.location
    summary = read_summary(view.folder)
    status = summary.get("status")
    if status == SessionStatus.PAUSED:
        print(printable(f"Session paused. Resume with:\n   {view.resume_command()}", keep_newlines=True))
        return 0
    if status == SessionStatus.COMPLETED:
        print(printable(f"Session {name} completed before it could pause; nothing to resume."))
        return 0
    raise SessionError(
        f"Session {name} stopped without pausing (status: {status}). Details: lightning-bohb status {shlex.quote(name)}"
    )

