"""``lightning-bohb clean [EXPERIMENT_DIR] --older-than AGE``: remove old finished sessions."""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

from lightning_bohb.cli.arguments import Number
from lightning_bohb.cli.commands.base import Command, add_experiment_dir
from lightning_bohb.cli.format import one_line, plural, printable
from lightning_bohb.cli.sessions import find_sessions, timestamp
from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.backend import SessionBackend, link_below
from lightning_bohb.session.owner_record import lock_is_live, read_lock
from lightning_bohb.session.state import SessionStatus, read_summary
from lightning_bohb.utils.layout import SUMMARY_FILE


class Clean(Command):
    name = "clean"
    help = "remove old finished sessions"
    description = (
        "Remove COMPLETED, PAUSED and FAILED sessions whose last activity is older than --older-than. "
        "A session whose driver is running is never removed."
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_experiment_dir(parser)
        parser.add_argument("--older-than", metavar="AGE", type=Number(duration=True), required=True, help="e.g. 30d, 12h, 90m, 45s, 2w")
        parser.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        return clean(args.experiment_dir, args.older_than, dry_run=args.dry_run)


def clean(experiment_dir: str, older_than: float, dry_run: bool = False) -> int:
    """Remove finished sessions (COMPLETED, PAUSED, FAILED) idle for more than ``older_than`` seconds.

    Never follows a symbolic link out of ``experiment_dir``: a linked experiment folder or session is
    skipped with a note. A session is deleted only while holding its lock, so a resume starting at the
    same moment either holds the lock first (the session is kept) or finds the session gone. A session
    that cannot be removed is reported and the others are still cleaned (exit status 1).
    """
    now = time.time()
    removed = kept = failed = 0
    for session, _, summary, problem in find_sessions(experiment_dir):
        link = link_below(experiment_dir, session)
        if link is not None:
            note = f"note: skipping {session.location}: {link} is a symbolic link (clean never follows links out of {experiment_dir})"
            print(printable(note), file=sys.stderr)
            kept += 1
            continue
        try:
            gone = not problem and _clean_session(session, summary, now, older_than, dry_run)
        except Exception as err:  # one session's trouble never stops the others
            print(printable(f"warning: could not remove {session.location}: {one_line(str(err))}"), file=sys.stderr)
            failed += 1
            continue
        removed += gone
        kept += not gone
    return _cleaned(removed, kept, failed, dry_run)


def _cleaned(removed: int, kept: int, failed: int, dry_run: bool) -> int:
    verb = "Would remove" if dry_run else "Removed"
    print(f"{verb} {plural(removed, 'session')}; kept {kept}.")
    if failed:
        raise SessionError(f"Could not remove {plural(failed, 'session')} (see the warnings above); the others were cleaned.")
    return 0


def _clean_session(session: SessionBackend, summary: Dict[str, Any], now: float, older_than: float, dry_run: bool) -> bool:
    """Remove one session if it is finished, idle long enough and not running; True if it was (would be).
    It is deleted under its lock (a stored one: its lease), so that a resume starting meanwhile keeps it."""
    folder = session.folder
    if _idle_since(folder, summary, now, older_than) is None or lock_is_live(read_lock(folder)):
        return False
    if dry_run:
        _say_removing(session, summary, now, older_than, "would remove")
        return True
    lock = session.lease(heartbeat_s=None)
    try:
        lock.acquire(sweep=False)
    except SessionError as err:
        print(printable(f"note: skipping {session.location}: {one_line(str(err))}"), file=sys.stderr)
        return False
    try:
        summary = read_summary(session.refresh())  # again, under the lock: a resume may have run in between
        if _idle_since(folder, summary, now, older_than) is None:
            return False
        _say_removing(session, summary, now, older_than, "removing")
        session.remove()
    finally:
        lock.release()
    return True


def _idle_since(session: Path, summary: Dict[str, Any], now: float, older_than: float) -> Optional[float]:
    """When a finished session was last active, if longer than ``older_than`` ago; else None."""
    if summary.get("status") not in (SessionStatus.COMPLETED, SessionStatus.PAUSED, SessionStatus.FAILED):
        return None
    last = last_activity(session, summary)
    return last if now - last > older_than else None


def _say_removing(session: SessionBackend, summary: Dict[str, Any], now: float, older_than: float, verb: str) -> None:
    last = _idle_since(session.folder, summary, now, older_than) or now
    when = datetime.datetime.fromtimestamp(last).isoformat(timespec="seconds")
    print(printable(f"{verb} {session.location}  ({summary.get('status')}, last active {when})"))


def last_activity(session: Path, summary: Dict[str, Any]) -> float:
    """The summary's ``updated_at`` as a timestamp, else the summary file's modification time."""
    updated = timestamp(summary.get("updated_at"))
    return updated if updated is not None else (session / SUMMARY_FILE).stat().st_mtime

