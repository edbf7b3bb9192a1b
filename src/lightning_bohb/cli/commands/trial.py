"""``lightning-bohb trial pause|continue|stop SESSION TRIAL``: steer one trial of a session.

The request is a small file in ``<session>/requests/`` (`lightning_bohb.pause.trial_requests`); the
session's driver reads it within a second, checks it and acts through Ray Tune's own decisions:

- ``pause``: the trial checkpoints at its next validated epoch end, goes PAUSED and frees its slot;
  it stays paused across a session pause and resume, until ``continue``.
- ``continue``: the paused trial becomes runnable again and resumes from its checkpoint exactly
  (its per-epoch metrics are those of a trial never paused).
- ``stop``: a running trial ends at its next validated epoch end (TERMINATED, like a trial the
  scheduler stops); a pending or paused one ends at once.

A request for a session that is not running waits in its folder and is applied when it resumes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lightning_bohb.cli.commands.base import Command, add_session_dir
from lightning_bohb.exceptions import SessionError
from lightning_bohb.pause.trial_requests import ACTIONS, TRIAL_ID, TrialHolds, write_request
from lightning_bohb.pause.trial_status import TrialAction
from lightning_bohb.session.history import summary_trials
from lightning_bohb.session.owner_record import lock_is_live, read_lock
from lightning_bohb.session.state import SessionStatus, read_summary


class TrialCommand(Command):
    name = "trial"
    help = "pause, continue or stop one trial of a session"
    description = (
        "pause: the trial checkpoints at its next validated epoch end and frees its slot, until 'continue' (also "
        "after a session pause and resume); it then continues exactly from its checkpoint. stop: it ends at its "
        "next validated epoch end (at once if not running). The running driver takes the request within a second; "
        "a paused session applies it when resumed. Not for BOHB (its brackets move trials together)."
    )
    local_only = "session_dir"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", choices=[action.value for action in TrialAction], help="what to do")
        add_session_dir(parser)
        parser.add_argument("trial_id", metavar="TRIAL", help="the trial id (lightning-bohb status SESSION_DIR lists them)")

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        request(args.session_dir, args.action, args.trial_id)
        return 0


def request(session_dir: str, action: str, trial_id: str, wait: float = 10.0, quiet: bool = False) -> str:
    """Leave ``action`` for trial ``trial_id``; returns what happened, in one sentence.

    Waits up to ``wait`` seconds for a running driver to take the request.
    """
    session = Path(session_dir).expanduser()
    if action not in ACTIONS:
        raise SessionError(f"Unknown trial action {action!r}; choose one of: {', '.join(ACTIONS)}.")
    summary = read_summary(session)
    trials = summary_trials(summary)
    if not TRIAL_ID.match(trial_id) or trial_id not in trials:
        known = ", ".join(sorted(trials)) or "none yet"
        raise SessionError(f"Session {session} has no trial {trial_id!r}. Its trials: {known}. See: lightning-bohb status {session}")
    status = str(trials[trial_id].get("status"))
    named = summary.get("strategy")
    strategy = named if isinstance(named, dict) else {}
    if action == TrialAction.PAUSE and strategy.get("name") == "bohb":
        raise SessionError(
            "A BOHB session cannot pause one trial: HyperBand brackets advance their trials together, so the bracket "
            f"would wait for it. Pause the whole session instead: lightning-bohb pause {session}"
        )
    if not TrialHolds.allows(action, status):
        raise SessionError(f"Trial {trial_id} is {status}: nothing to {action}.")
    path = write_request(session, action, trial_id)
    what = {
        TrialAction.PAUSE: "pauses at its next validated epoch end and frees its slot",
        TrialAction.CONTINUE: "continues from its checkpoint",
        TrialAction.STOP: "stops (at its next validated epoch end if running)",
    }[TrialAction(action)]
    running = summary.get("status") == SessionStatus.RUNNING and lock_is_live(read_lock(session))
    if not running:
        message = f"Session {session} is not running: trial {trial_id} {what} when the session resumes."
    else:
        taken = _wait_taken(path, wait)
        message = f"Trial {trial_id} {what}." if taken else (
            f"Asked trial {trial_id} to {action}; the driver has not taken the request yet (within {wait:g} s)."
        )
    if not quiet:
        print(message)
    return message


def _wait_taken(path: Path, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not path.exists():
            return True
        time.sleep(0.1)
    return not path.exists()

